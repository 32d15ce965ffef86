"""The C kernels and what they need around them, each in its own module:

* :mod:`.build`: where a kernel comes from (built at install, else compiled at first use) and
  the one warning per process when it cannot be had;
* :mod:`.threads`: splitting a call's lanes over threads;
* :mod:`.workspace`: reusable buffers, each owned by a lease;
* :mod:`.minrnn`: the MinLSTM / MinGRU layer on ``kernels/minrnn.c`` (its autograd function);
* :mod:`.scan`: the LSTM / GRU / RNN step loops of the transparent engine on ``kernels/scan.c``.

:func:`describe` is what ``biolstm --version`` prints about them.
"""

from __future__ import annotations

from . import build, minrnn, scan


def describe() -> dict[str, str]:
    """Per kernel, a line saying whether it is active (and where it comes from) or why not."""
    return {build.PURPOSE["scan"][0]: scan.describe(), build.PURPOSE["minrnn"][0]: minrnn.describe()}


__all__ = ["build", "describe", "minrnn", "scan"]

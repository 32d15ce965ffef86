"""Activation functions for the recurrent cells, by Keras name or as any callable.

The transparent engine's backward pass needs each activation's derivative. For the named
activations the derivative follows from the *output* y = act(x) (sigmoid: y(1-y), tanh:
1-y^2, ...), so no pre-activation has to be stored. For any other callable the engine keeps
the pre-activation x and differentiates the callable with autograd, element by element:
a user callable must therefore be element-wise (every output element depends only on the
input element in the same place), which is true of every activation function in common use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class Activation:
    """An element-wise activation with what the hand-written BPTT needs.

    Attributes:
        name: Keras-style name, or the callable's ``__name__``.
        fn: out-of-place function ``y = fn(x)``.
        inplace: in-place version (``x`` overwritten by ``fn(x)``), or None.
        grad_from_output: ``dy/dx`` as a function of ``y``, or None when the derivative
            needs the pre-activation (then it is obtained with autograd from ``x``).
    """

    name: str
    fn: Callable[[Tensor], Tensor]
    inplace: Callable[[Tensor], object] | None = None
    grad_from_output: Callable[[Tensor], Tensor] | None = None
    out_fn: Callable[[Tensor, Tensor], object] | None = None

    @property
    def needs_input(self) -> bool:
        """True when the backward pass needs the pre-activation, not only the output."""
        return self.grad_from_output is None

    def apply_(self, x: Tensor) -> Tensor:
        """Overwrite ``x`` with ``fn(x)`` and return it."""
        if self.inplace is not None:
            self.inplace(x)
        else:
            x.copy_(self.fn(x))
        return x

    def into(self, x: Tensor, out: Tensor) -> Tensor:
        """Write ``fn(x)`` into ``out`` (same shape) and return ``out``."""
        if self.out_fn is not None:
            self.out_fn(x, out)
        else:
            out.copy_(x)
            self.apply_(out)
        return out

    def grad(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        """Element-wise derivative at the point where ``y = fn(x)``."""
        if self.grad_from_output is not None:
            return self.grad_from_output(y)
        if x is None:
            raise ValueError(f"activation {self.name!r} needs its input to differentiate")
        with torch.enable_grad():
            xx = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(self.fn(xx), xx, torch.ones_like(xx))
        return g

    def __call__(self, x: Tensor) -> Tensor:
        return self.fn(x)

    def __reduce__(self):
        # Built-ins travel by name (their functions include lambdas); callables as themselves.
        if _NAMED.get(self.name) is self:
            return (get_activation, (self.name,))
        return (Activation, (self.name, self.fn, self.inplace, self.grad_from_output, self.out_fn))


def _hard_sigmoid(x: Tensor) -> Tensor:
    # Keras 3 definition: relu6(x + 3) / 6, torch's hardsigmoid. Written out because torch's
    # hardsigmoid backward uses a float32 1/6 even for float64 tensors.
    return (x + 3).clamp(0, 6) / 6


def _linear(x: Tensor) -> Tensor:
    return x


_NAMED: dict[str, Activation] = {
    "tanh": Activation("tanh", torch.tanh, torch.tanh_, lambda y: 1 - y * y, lambda x, o: torch.tanh(x, out=o)),
    "sigmoid": Activation(
        "sigmoid", torch.sigmoid, torch.sigmoid_, lambda y: y * (1 - y), lambda x, o: torch.sigmoid(x, out=o)
    ),
    "relu": Activation(
        "relu", torch.relu, torch.relu_, lambda y: (y > 0).to(y.dtype), lambda x, o: torch.clamp_min(x, 0, out=o)
    ),
    "hard_sigmoid": Activation(
        "hard_sigmoid",
        _hard_sigmoid,
        lambda x: x.add_(3).clamp_(0, 6).div_(6),
        lambda y: ((y > 0) & (y < 1)).to(y.dtype) / 6,
    ),
    "linear": Activation("linear", _linear, lambda x: x, torch.ones_like),
    "elu": Activation(
        "elu",
        F.elu,
        lambda x: F.elu(x, inplace=True),
        lambda y: torch.where(y > 0, torch.ones_like(y), y + 1),
    ),
    "softsign": Activation("softsign", F.softsign, None, lambda y: (1 - y.abs()) ** 2),
    "softplus": Activation("softplus", F.softplus, None, lambda y: -torch.expm1(-y)),
    "selu": Activation("selu", torch.selu, torch.selu_, None),
    "silu": Activation("silu", F.silu, lambda x: F.silu(x, inplace=True), None),
    "gelu": Activation("gelu", F.gelu, None, None),
}
_ALIASES = {"swish": "silu", None: "linear"}

ACTIVATION_NAMES = tuple(sorted(_NAMED)) + tuple(k for k in _ALIASES if k)


def get_activation(
    spec: str | Callable[[Tensor], Tensor] | Activation | None, argument: str = "activation"
) -> Activation:
    """Resolve a Keras name (``'tanh'``, ``'relu'``, ...), a callable or None (linear).

    Raises:
        ValueError: for an unknown name, naming ``argument`` and the known names.
        TypeError: for anything that is neither a string nor a callable.
    """
    if isinstance(spec, Activation):
        return spec
    if spec is None or isinstance(spec, str):
        key = _ALIASES.get(spec, spec)
        if isinstance(key, str) and key.lower() in _NAMED:
            return _NAMED[key.lower()]
        raise ValueError(
            f"{argument}: expected one of {', '.join(repr(n) for n in ACTIVATION_NAMES)} or a callable, got {spec!r}"
        )
    if isinstance(spec, torch.nn.Module) or callable(spec):
        for act in _NAMED.values():  # torch.tanh passed as a callable keeps the fast path
            if spec is act.fn:
                return act
        # A user callable never takes a built-in's name (the engines key fast paths on it).
        name = f"callable {getattr(spec, '__name__', type(spec).__name__)}"
        return Activation(name, spec, None, None)
    raise TypeError(f"{argument}: expected a name or a callable, got {type(spec).__name__}")

"""The real data files tests read, all inside the repository: the Oct4/MafK peaks and sunspots
bundled with the package (src/biolstm/demo_data) and the example data (examples/data)."""

from __future__ import annotations

from pathlib import Path

from biolstm.demo import demo_config

ROOT = Path(__file__).resolve().parents[1]  # the repository
EXAMPLES = ROOT / "examples"
OCT4 = demo_config("oct4.fa.gz")  # 3,897 Oct4 ChIP-seq peaks, 200 bp
MAFK = demo_config("mafk.fa.gz")  # 3,900 MafK ChIP-seq peaks, 200 bp
SUNSPOTS = demo_config("sunspot_year.csv")  # yearly sunspot numbers 1700-1988
PBC = EXAMPLES / "data" / "pbcseq.csv.gz"  # Mayo Clinic PBC visits

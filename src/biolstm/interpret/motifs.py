"""From attributions to motifs: attribution logos (logomaker), top-scoring windows collected
into position weight matrices, and MEME-format output for tools such as Tomtom.

The score of a position is its attribution on the base actually present (``attr * x``).
Positive scores push the output up (towards the positive class), negative ones down, so
:func:`find_motifs` collects windows of each sign separately.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

DNA = "ACGT"


class Motif(NamedTuple):
    name: str
    pwm: np.ndarray  # (W, C) base probabilities per position
    sites: int  # windows that built it
    sign: int  # +1: raises the output (positive class), -1: lowers it
    alphabet: str = DNA

    @property
    def consensus(self) -> str:
        return "".join(self.alphabet[i] for i in self.pwm.argmax(1))


def position_scores(attr: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Attribution on the base present at each position ``(B, T)``."""
    return (np.asarray(attr) * np.asarray(x)).sum(-1)


def _windows(scores, x, width, sign, per_sequence, min_score, pad: int = 0):
    """Windows ``(n, width + 2 * pad, C)`` around each sequence's best-scoring stretches of one
    sign: the ``width`` positions of the stretch and ``pad`` more on each side (zero rows past
    the sequence's ends), so clustering can shift a window to align it."""
    B = len(x)
    s = sign * scores
    kernel = np.ones(width)
    padded = np.concatenate([np.zeros((B, pad, x.shape[2])), x, np.zeros((B, pad, x.shape[2]))], 1) if pad else x
    out, strength = [], []
    for b in range(B):
        total = np.convolve(s[b], kernel, mode="valid")  # window sums, start positions 0..T-width
        taken = np.zeros(len(total), dtype=bool)
        for _ in range(per_sequence):
            cand = np.where(taken, -np.inf, total)
            k = int(np.argmax(cand))
            if not np.isfinite(cand[k]) or cand[k] <= min_score:
                break
            out.append(padded[b, k : k + width + 2 * pad])  # x[b, k - pad : k + width + pad]
            strength.append(cand[k])
            taken[max(0, k - width + 1) : k + width] = True  # no overlapping windows
    return np.array(out), np.array(strength)


def _aligned(windows: np.ndarray, pwm: np.ndarray, dna: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per padded window: the best mean probability the PWM gives the bases of any of its
    sub-windows of the PWM's width, on either strand for DNA, and that sub-window oriented."""
    width = len(pwm)
    best = np.full(len(windows), -np.inf)
    chosen = np.zeros((len(windows), width, windows.shape[2]))
    for shift in range(windows.shape[1] - width + 1):
        sub = windows[:, shift : shift + width]
        for oriented in (sub, sub[:, ::-1, ::-1]) if dna else (sub,):
            score = (oriented * pwm).sum((1, 2)) / width
            better = score > best
            best = np.where(better, score, best)
            chosen[better] = oriented[better]
    return best, chosen


def _clusters(windows: np.ndarray, dna: bool, most: int, min_identity: float, min_sites: int, pad: int = 0) -> list:
    """Greedy clustering of windows (strongest first): a seed gathers every window sharing
    ``min_identity`` of its bases at its best shift (up to ``pad`` positions either way) and
    strand (DNA), the aligned members' average becomes the PWM and gathers again (twice);
    members leave the pool and the next seed starts."""
    width = windows.shape[1] - 2 * pad
    pool = np.arange(len(windows))
    found = []
    while len(pool) and len(found) < most:
        seed = windows[pool[0], pad : pad + width]
        pwm = seed
        for _ in range(3):
            best, chosen = _aligned(windows[pool], pwm, dna)
            threshold = min_identity if pwm is seed else min_identity * float(best.max(initial=0))
            member = best >= threshold
            pwm = chosen[member].mean(0)
        if member.sum() >= min_sites:
            found.append((pwm, int(member.sum())))
        pool = pool[~member] if member.any() else pool[1:]
    return found


def find_motifs(
    attr: np.ndarray,
    x: np.ndarray,
    width: int = 12,
    top: int = 300,
    per_sequence: int = 1,
    alphabet: str = DNA,
    output: np.ndarray | None = None,
    per_sign: int = 3,
    min_identity: float = 0.75,
    min_sites: int = 10,
    shift: int = 2,
) -> list[Motif]:
    """Motifs from the ``top`` strongest windows of ``width`` positions of each sign (at most
    ``per_sequence`` per sequence, none overlapping), clustered greedily (up to ``per_sign``
    clusters, each with at least ``min_sites`` windows, on either strand for DNA, each window
    shifted by up to ``shift`` positions to align with its cluster) into position weight
    matrices with a 0.01 pseudocount per base, largest cluster first. With the model's
    ``output`` (B,) (a logit), windows that raise it come from sequences predicted positive
    (output > 0) and windows that lower it from those predicted negative."""
    x = np.asarray(x, dtype=np.float64)
    scores = position_scores(attr, x)
    motifs = []
    for sign, label in ((1, "up"), (-1, "down")):
        keep = np.ones(len(x), dtype=bool) if output is None else np.sign(np.asarray(output)) == sign
        win, strength = _windows(scores[keep], x[keep], width, sign, per_sequence, 0.0, pad=shift)
        if len(win) == 0:
            continue
        win = win[np.argsort(-strength)[:top]]
        for k, (pwm, sites) in enumerate(_clusters(win, alphabet == DNA, per_sign, min_identity, min_sites, shift)):
            counts = pwm + 0.01
            motifs.append(Motif(f"{label}_{k + 1}", counts / counts.sum(1, keepdims=True), sites, sign, alphabet))
    return motifs


def first_conv(model):
    """The first 1-D convolution over the input channels of ``model`` (e.g. a SequenceClassifier's
    ``conv``), or None."""
    import torch.nn as nn

    for module in model.modules():
        if isinstance(module, nn.Conv1d):
            return module
    return None


def filter_motifs(model, x: np.ndarray, threshold: float = 0.5, min_sites: int = 10,
                  alphabet: str = DNA) -> list[Motif]:  # fmt: skip
    """Motifs of the first-layer convolution filters, as Basset reads them: for each filter, the
    input windows (one per sequence, at its strongest activation) whose ReLU activation exceeds
    ``threshold`` times the filter's largest activation over ``x`` ``(B, T, C)``, averaged into
    a PWM (0.01 pseudocount). Filters with fewer than ``min_sites`` such windows are left out;
    each motif is named ``filter_<k>`` and its ``sites`` are the windows."""
    import torch

    conv = first_conv(model)
    if conv is None:
        return []
    C = len(alphabet)
    x = np.asarray(x, dtype=np.float32)[..., :C]
    if conv.in_channels < C:
        return []
    k, pad = conv.kernel_size[0], conv.padding
    pad = {"same": (k - 1) // 2, "valid": 0}[pad] if isinstance(pad, str) else pad[0]  # left padding
    with torch.no_grad():
        inp = torch.from_numpy(x).transpose(1, 2)
        if conv.in_channels > C:  # extra channels (e.g. a soft-mask channel) read as zero
            inp = torch.cat([inp, inp.new_zeros(len(x), conv.in_channels - C, x.shape[1])], 1)
        act = torch.relu(conv.to("cpu")(inp)).numpy()  # (B, F, T')
    padded = np.concatenate([np.zeros((len(x), pad, C)), x, np.zeros((len(x), pad, C))], 1)
    motifs = []
    for f in range(act.shape[1]):
        a = act[:, f]
        peak = a.max()
        if peak <= 0:
            continue
        where = a.argmax(1)
        keep = a[np.arange(len(a)), where] > threshold * peak
        if keep.sum() < min_sites:
            continue
        windows = np.stack([padded[b, where[b] : where[b] + k] for b in np.flatnonzero(keep)])
        counts = windows.sum(0) + 0.01
        motifs.append(Motif(f"filter_{f + 1}", counts / counts.sum(1, keepdims=True), int(keep.sum()), 0, alphabet))
    return motifs


def best_match(motif: Motif, consensus: str) -> tuple[int, str]:
    """(mismatches, where) of ``consensus`` (IUPAC letters allowed, e.g. 'TGCTGASTCAGCA')
    against the motif's consensus on either strand at the best offset; a consensus longer
    than the motif is compared over the overlapping part."""
    iupac = {"A": "A", "C": "C", "G": "G", "T": "T", "R": "AG", "Y": "CT", "S": "CG", "W": "AT", "K": "GT",
             "M": "AC", "N": "ACGT"}  # fmt: skip
    comp = {"A": "T", "C": "G", "G": "C", "T": "A"}
    fwd = motif.consensus
    rev = "".join(comp[c] for c in reversed(fwd))
    best = (len(consensus) + 1, "")
    for strand, s in (("+", fwd), ("-", rev)):
        for off in range(-len(consensus) + 4, len(s) - 3):  # at least 4 positions overlap
            pairs = [(s[off + k], consensus[k]) for k in range(len(consensus)) if 0 <= off + k < len(s)]
            miss = sum(a not in iupac[b] for a, b in pairs) + (len(consensus) - len(pairs))
            best = min(best, (miss, f"{strand}{off}"))
    return best


def aligned_view(values: np.ndarray, width: int = 12, flank: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Projected contributions ``values`` (B, T, C) of many sequences cut around each one's
    strongest seqlet: the ``width``-position window with the largest absolute summed
    contribution. Returns ``(aligned (B, 2 * flank, C), centres (B,))``: position ``flank`` of
    each row is the seqlet's centre, NaN where the window runs past a sequence's ends."""
    values = np.asarray(values, dtype=np.float64)
    B, T, C = values.shape
    scores = values.sum(-1)
    width = min(width, T)
    sums = np.stack([np.convolve(s, np.ones(width), mode="valid") for s in scores])  # (B, T - width + 1)
    centres = np.abs(sums).argmax(1) + width // 2
    out = np.full((B, 2 * flank, C), np.nan)
    for b, c in enumerate(centres):
        lo, hi = max(0, c - flank), min(T, c + flank)
        out[b, lo - (c - flank) : hi - (c - flank)] = values[b, lo:hi]
    return out, centres


def write_meme(motifs: list[Motif], path: str | Path, matches: list | None = None) -> Path:
    """Motifs in MEME minimal format (letter-probability matrices), atomically.

    Each matrix line gives ``nsites=``, the number of windows (seqlets) averaged into the
    motif, and no ``E=``: the format makes it optional, and no significance is computed here.
    With ``matches`` (per motif, :class:`~biolstm.interpret.motif_db.MotifMatch` best first), a
    motif whose best database match has q < 0.05 takes the match as its alternate name
    (``MOTIF up_1 POU5F1_MA1115.1``) and the match's JASPAR page as its ``URL``; otherwise the
    alternate name is the consensus."""
    from .._io import atomic_write_text

    if not motifs:
        raise ValueError("motifs: expected at least one motif to write, got none")
    alphabet = motifs[0].alphabet
    lines = ["MEME version 4", "", f"ALPHABET= {alphabet}", ""]
    if alphabet == DNA:
        lines += ["strands: + -", "", "Background letter frequencies", "A 0.25 C 0.25 G 0.25 T 0.25", ""]
    for k, m in enumerate(motifs):
        head = f"letter-probability matrix: alength= {len(alphabet)} w= {len(m.pwm)} nsites= {m.sites}"
        best = matches[k][0] if matches and matches[k] and matches[k][0].q < 0.05 else None
        if best is None:
            lines += [f"MOTIF {m.name} {m.consensus}", "", head]
        else:
            alt = "".join(c if c.isalnum() or c in "._-" else "_" for c in f"{best.name}_{best.matrix_id}")
            lines += [f"MOTIF {m.name} {alt}", "", f"URL https://jaspar.elixir.no/matrix/{best.matrix_id}/", "", head]
        lines += [" " + " ".join(f"{p:.4f}" for p in row) for row in m.pwm]
        lines.append("")
    atomic_write_text(Path(path), "\n".join(lines))
    return Path(path)


def logo(matrix: np.ndarray, alphabet: str = DNA, ax=None, title: str = "", kind: str = "attribution"):
    """A sequence logo of ``matrix`` ``(T, C)`` with logomaker: attributions (letters above and
    below the axis) or a PWM drawn in bits (``kind='pwm'``). Returns the matplotlib axes."""
    import logomaker
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    df = pd.DataFrame(np.asarray(matrix, dtype=np.float64), columns=list(alphabet))
    if kind == "pwm":
        df = logomaker.transform_matrix(df, from_type="probability", to_type="information")
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4, 0.28 * len(df)), 2.2))
    logomaker.Logo(df, ax=ax, color_scheme="classic" if alphabet == DNA else "chemistry")
    ax.set(title=title, ylabel="bits" if kind == "pwm" else "attribution",
           xlabel="position in the motif" if kind == "pwm" else "position in the sequence")  # fmt: skip
    return ax

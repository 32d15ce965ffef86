"""Machine translation in biology: coding DNA (codons) in, protein (amino acids) out, with an LSTM
encoder-decoder with attention, written as Keras users write the classic seq2seq (teacher forcing)
on ``biolstm.keras``.

Data. The repository has no set of coding sequences, so this script makes one: it takes the 3
UniProt/Swiss-Prot proteins of ``examples/data/sample_protein.fa`` and reverse-translates protein
fragments with random synonymous codons (the standard genetic code, seeded). Exactly what is held out:

- training: fragments of Q6GZX4 (001R_FRG3G, 256 aa) and Q197F8 (002R_IIV3, 458 aa), of lengths
  10-24 residues starting at every second offset. Every epoch draws new synonymous codons for
  every fragment, and half of the fragments have their residues shuffled (a random order of the
  same residues), so the decoder cannot learn the two proteins by heart: only the codons tell
  it what comes next;
- test: the whole of Q6GZX3 (002L_FRG3G, 320 aa), a protein the model never sees: fragments of 12
  and 24 residues (training lengths) and of 36, 48 and 72 residues (beyond them), at offsets 0, 3,
  6, ..., with their own random codons.

Tokens: 64 codons + padding in; 20 amino acids + start + end + padding out (and, as decoder input
only, an "unknown" token: in training 30% of the teacher-forced residues are replaced by it, the
word dropout of Bowman et al. 2016, which again makes the decoder read the codons).

Model. Embedding(mask_zero=True) -> LSTM encoder (return_sequences, return_state) -> decoder LSTM
(initial_state from the encoder, teacher forcing: its input is the target shifted right after a
start token) -> Attention([decoder_seq, encoder_seq]) -> Concatenate -> Dense softmax. A variant
without the Attention layer is trained the same way. Inference: greedy decoding and beam search
(width 3) with an encoder sub-model and a one-step decoder built from the same trained layers.
The attention weights are plotted (codons against residues) and scored: the share of residues
whose largest weight falls on their own codon (1.0 is the exact diagonal).

Reference: translating with the codon table is exact (1.000 on every metric) by construction; it is
the number the model should reach, not a competitor.

    python examples/translate_dna.py --out runs/translate [--epochs N] [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import time
from pathlib import Path

import numpy as np

from biolstm.keras import Input, Model
from biolstm.keras import layers as L
from biolstm.keras.optimizers import Adam
from biolstm.keras.utils import pad_sequences, set_random_seed

DATA = Path(__file__).parent / "data" / "sample_protein.fa"
TRAIN_IDS, TEST_ID = ("Q6GZX4", "Q197F8"), "Q6GZX3"

# -- the standard genetic code (NCBI table 1), codons in TCAG order
BASES = "TCAG"
CODONS = ["".join(c) for c in itertools.product(BASES, repeat=3)]
_AAS = "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"
CODE = dict(zip(CODONS, _AAS))
AMINO = "ACDEFGHIKLMNPQRSTVWY"
SYNONYMS = {a: [c for c in CODONS if CODE[c] == a] for a in AMINO}
CODON_ID = {c: k + 1 for k, c in enumerate(CODONS)}  # 0 is padding
PAD, START, END = 0, 1, 2
AA_ID = {a: k + 3 for k, a in enumerate(AMINO)}
ID_AA = {v: k for k, v in AA_ID.items()}
N_IN, N_OUT = len(CODONS) + 1, len(AMINO) + 3
UNK = N_OUT  # decoder input only: a teacher-forced residue hidden by word dropout


def read_fasta(path: Path = DATA) -> dict[str, str]:
    """Accession -> sequence (UniProt headers ``>sp|ACC|NAME ...``)."""
    out: dict[str, str] = {}
    acc = None
    for line in Path(path).read_text().splitlines():
        if line.startswith(">"):
            acc = line[1:].split("|")[1] if "|" in line else line[1:].split()[0]
            out[acc] = ""
        elif acc is not None:
            out[acc] += line.strip()
    return out


def reverse_translate(protein: str, rng: np.random.Generator) -> str:
    """A coding DNA for ``protein``: a random synonymous codon per residue."""
    return "".join(SYNONYMS[a][rng.integers(len(SYNONYMS[a]))] for a in protein)


def translate(dna: str) -> str:
    """The codon-table baseline: exact by construction."""
    return "".join(CODE[dna[i : i + 3]] for i in range(0, len(dna) - len(dna) % 3, 3))


def fragments(protein: str, lengths, step: int = 1) -> list[str]:
    return [protein[i : i + n] for n in lengths for i in range(0, len(protein) - n + 1, step)]


def make_pairs(proteins: list[str], rng: np.random.Generator, copies: int = 1) -> tuple[list[str], list[str]]:
    """(dna, protein) pairs: every protein reverse-translated ``copies`` times."""
    dna, prot = [], []
    for _ in range(copies):
        for p in proteins:
            dna.append(reverse_translate(p, rng))
            prot.append(p)
    return dna, prot


def encode(dna: list[str], prot: list[str], width: int | None = None):
    """Encoder input (codon ids), decoder input (start + residues) and decoder target (residues +
    end), zero-padded at the end to ``width`` (default: the longest)."""
    src = [[CODON_ID[d[i : i + 3]] for i in range(0, len(d), 3)] for d in dna]
    tgt = [[AA_ID[a] for a in p] for p in prot]
    t = width or max(len(s) for s in src)
    x = pad_sequences(src, maxlen=t, padding="post", value=PAD)
    dec_in = pad_sequences([[START, *s] for s in tgt], maxlen=t + 1, padding="post", value=PAD)
    dec_out = pad_sequences([[*s, END] for s in tgt], maxlen=t + 1, padding="post", value=PAD)
    return x.astype("int64"), dec_in.astype("int64"), dec_out.astype("int64")


def decode_ids(ids) -> str:
    out = []
    for t in ids:
        t = int(t)
        if t == END:
            break
        out.append(ID_AA.get(t, "X"))  # X: start or padding emitted where a residue belongs
    return "".join(out)


# ---------------------------------------------------------------------------------- models
def build_models(units: int = 128, emb: int = 32, attention: bool = True, lr: float = 1e-2):
    """The training model and, from the same layers (shared weights), the inference sub-models:
    ``encoder`` (codons -> [encoder_seq, h, c]), ``step`` (one decoder step: [token, h, c,
    encoder_seq] -> [probabilities, h, c(, attention scores)]) and ``scores`` (teacher-forced
    attention weights, attention only)."""
    enc_in = Input(shape=(None,), name="codons")
    enc_seq, h, c = L.LSTM(units, return_sequences=True, return_state=True, name="encoder")(
        L.Embedding(N_IN, emb, mask_zero=True, name="codon_embedding")(enc_in))  # fmt: skip
    dec_in = Input(shape=(None,), name="residues_in")
    dec_emb = L.Embedding(N_OUT + 1, emb, mask_zero=True, name="residue_embedding")  # + UNK
    decoder = L.LSTM(units, return_sequences=True, return_state=True, name="decoder")
    att = L.Attention(name="attention") if attention else None
    concat = L.Concatenate(name="concat") if attention else None
    head = L.Dense(N_OUT, activation="softmax", name="residues_out")

    def tail(dec_seq, memory):
        if att is None:
            return head(dec_seq), None
        context, scores = att([dec_seq, memory], return_attention_scores=True)
        return head(concat([dec_seq, context])), scores

    dec_seq, _, _ = decoder(dec_emb(dec_in), initial_state=[h, c])
    probs, scores = tail(dec_seq, enc_seq)
    model = Model([enc_in, dec_in], probs, name="translator")
    # as in Keras, the decoder's mask (its Embedding(mask_zero=True)) keeps padded steps out of the loss
    model.compile(optimizer=Adam(learning_rate=lr), loss="sparse_categorical_crossentropy")

    encoder = Model(enc_in, [enc_seq, h, c], name="encoder_model")
    tok, h_in, c_in = Input(shape=(1,), name="token"), Input(shape=(units,), name="h"), Input(shape=(units,), name="c")
    mem = Input(shape=(None, units), name="memory")
    seq1, h1, c1 = decoder(dec_emb(tok), initial_state=[h_in, c_in])
    p1, s1 = tail(seq1, mem)
    step = Model([tok, h_in, c_in, mem], [p1, h1, c1] + ([s1] if s1 is not None else []), name="decoder_step")
    attn = Model([enc_in, dec_in], scores, name="attention_model") if attention else None
    return {"model": model, "encoder": encoder, "step": step, "scores": attn, "attention": attention}


def greedy_decode(models, x: np.ndarray, max_len: int | None = None) -> list[str]:
    """Greedy decoding of a batch of equal-length codon sequences (no padding)."""
    memory, h, c = models["encoder"].predict(x, batch_size=len(x))
    tok = np.full((len(x), 1), START, dtype="int64")
    out = np.zeros((len(x), 0), dtype="int64")
    for _ in range(max_len or x.shape[1] + 5):
        res = models["step"].predict([tok, h, c, memory], batch_size=len(x))
        p, h, c = res[0], res[1], res[2]
        tok = p[:, -1].argmax(-1).reshape(-1, 1).astype("int64")
        out = np.concatenate([out, tok], 1)
        if ((out == END).any(1)).all():
            break
    return [decode_ids(r) for r in out]


def beam_decode(models, x: np.ndarray, width: int = 3, max_len: int | None = None) -> list[str]:
    """Beam search (sum of log-probabilities) over a batch of equal-length codon sequences: every
    sequence keeps ``width`` hypotheses, run together as one batch of len(x) * width."""
    n, k = len(x), width
    memory, h, c = models["encoder"].predict(x, batch_size=n)
    rep = lambda a: np.repeat(a, k, axis=0)  # noqa: E731
    memory, h, c = rep(memory), rep(h), rep(c)
    score = np.full((n, k), -np.inf)
    score[:, 0] = 0.0  # one live hypothesis at the start
    seqs = np.zeros((n, k, 0), dtype="int64")
    done = np.zeros((n, k), dtype=bool)
    tok = np.full((n * k, 1), START, dtype="int64")
    for _ in range(max_len or x.shape[1] + 5):
        res = models["step"].predict([tok, h, c, memory], batch_size=n * k)
        logp = np.log(np.clip(res[0][:, -1], 1e-12, None)).reshape(n, k, N_OUT)
        # a finished hypothesis only continues with padding, at no cost
        logp[done] = -np.inf
        logp[done, PAD] = 0.0
        total = (score[..., None] + logp).reshape(n, k * N_OUT)
        best = np.argsort(-total, axis=1)[:, :k]
        parent, new = best // N_OUT, best % N_OUT
        score = np.take_along_axis(total, best, 1)
        seqs = np.concatenate([np.take_along_axis(seqs, parent[..., None], 1), new[..., None]], 2)
        done = np.take_along_axis(done, parent, 1) | (new == END)
        flat = (parent + np.arange(n)[:, None] * k).reshape(-1)
        h, c, tok = res[1][flat], res[2][flat], new.reshape(-1, 1).astype("int64")
        if done[:, 0].all():
            break
    return [decode_ids(seqs[i, 0]) for i in range(n)]


def accuracy(pred: list[str], true: list[str]) -> tuple[float, float]:
    """Per-residue accuracy (position by position over the true protein; missing residues count as
    wrong) and exact-sequence accuracy (the whole protein, length included)."""
    hits = sum(sum(a == b for a, b in zip(p, t)) for p, t in zip(pred, true))
    return hits / sum(len(t) for t in true), float(np.mean([p == t for p, t in zip(pred, true)]))


def plot_attention(models, dna: str, prot: str, path: Path) -> Path:
    """The teacher-forced attention weights of one sequence: codons (x) against residues (y)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, d_in, _ = encode([dna], [prot])
    w = np.asarray(models["scores"].predict([x, d_in]))[0]  # (residues + 1, codons)
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(w, cmap="viridis", aspect="auto", vmin=0, vmax=1)
    codons = [dna[i : i + 3] for i in range(0, len(dna), 3)]
    ax.set_xticks(range(len(codons)), codons, rotation=90, fontsize=6)
    ax.set_yticks(range(len(prot) + 1), [*prot, "</s>"], fontsize=6)
    ax.set_xlabel("codon (encoder step)")
    ax.set_ylabel("predicted residue (decoder step)")
    ax.set_title("Attention weights on an unseen protein fragment")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------- the run
def make_data(quick: bool = False, seed: int = 0):
    """Training fragments (protein strings of lengths 10-24 of the training proteins, at every second
    offset, or every 12th with ``quick``; :func:`epoch_pairs` reverse-translates them anew every
    epoch) and test (dna, protein) pairs by length (the held-out protein)."""
    rng = np.random.default_rng(seed + 1000)  # the test codons: not the training stream
    prots = read_fasta()
    train = [f for acc in TRAIN_IDS for f in fragments(prots[acc], range(10, 25), 12 if quick else 2)]
    test_lengths = (12, 24, 36) if quick else (12, 24, 36, 48, 72)
    test = {n: make_pairs(fragments(prots[TEST_ID], [n], 40 if quick else 3), rng) for n in test_lengths}
    return train, test


def epoch_pairs(train: list[str], rng: np.random.Generator, shuffled: float = 0.5) -> tuple[list[str], list[str]]:
    """One epoch's (dna, protein) pairs: a share ``shuffled`` of the fragments get their residues
    in a random order, and every fragment gets new random synonymous codons."""
    prot = list(train)
    for i in rng.choice(len(prot), round(shuffled * len(prot)), replace=False):
        prot[i] = "".join(rng.permutation(list(prot[i])))
    return make_pairs(prot, rng)


def word_dropout(dec_in: np.ndarray, rng: np.random.Generator, rate: float) -> np.ndarray:
    """Teacher-forced residues replaced by UNK with probability ``rate`` (start and padding kept)."""
    out = dec_in.copy()
    out[(rng.random(out.shape) < rate) & (out > END)] = UNK
    return out


def train(models, train_fragments: list[str], epochs: int, seed: int = 0, shuffled: float = 0.5,
          dropout: float = 0.3, batch_size: int = 64, verbose: int = 0) -> list[float]:  # fmt: skip
    """Teacher-forced training, one fit() per epoch on that epoch's pairs; the loss per epoch."""
    rng = np.random.default_rng(seed)
    losses = []
    for _ in range(epochs):
        x, d_in, d_out = encode(*epoch_pairs(train_fragments, rng, shuffled))
        hist = models["model"].fit([x, word_dropout(d_in, rng, dropout)], d_out,
                                   batch_size=batch_size, epochs=1, verbose=verbose)  # fmt: skip
        losses.append(hist.history["loss"][-1])
    return losses


def diagonal_share(models, test) -> dict[int, float]:
    """Per test length, the share of residues (teacher-forced) whose largest attention weight is on
    their own codon: decoder step i predicts residue i, read from codon i (1.0 is the diagonal)."""
    out = {}
    for n, (dna, prot) in test.items():
        x, d_in, _ = encode(dna, prot)
        w = np.asarray(models["scores"].predict([x, d_in]))[:, : x.shape[1]]  # drop the end step
        out[n] = float((w.argmax(-1) == np.arange(x.shape[1])).mean())
    return out


def evaluate(models, test, beam_lengths=(), beam_width: int = 3) -> list[dict]:
    rows = []
    for n, (dna, prot) in test.items():
        x, _, _ = encode(dna, prot)
        base = accuracy([translate(d) for d in dna], prot)
        g = accuracy(greedy_decode(models, x), prot)
        row = {"length": n, "n": len(prot), "baseline": base, "greedy": g}
        if n in beam_lengths:
            row["beam"] = accuracy(beam_decode(models, x, beam_width), prot)
        rows.append(row)
    return rows


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", required=True, type=Path, help="folder for the attention plot")
    ap.add_argument("--epochs", type=int, default=None, help="training epochs (default 30, or 1 with --quick)")
    ap.add_argument("--quick", action="store_true", help="a small run for tests (seconds)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    t0 = time.time()
    epochs = args.epochs or (1 if args.quick else 30)
    units = 16 if args.quick else 64
    train_fragments, test = make_data(args.quick, seed=args.seed)
    train_len = 24
    results, losses = {}, {}
    for attention in (True, False):
        set_random_seed(args.seed)
        models = build_models(units=units, attention=attention)
        losses[attention] = train(models, train_fragments, epochs, seed=args.seed)
        beam_lengths = (train_len,) if attention else ()
        results[attention] = evaluate(models, test, beam_lengths)
        if attention:
            diagonal = diagonal_share(models, test)
            dna, prot = test[train_len][0][0], test[train_len][1][0]
            plot = plot_attention(models, dna, prot, args.out / "attention.png")
    elapsed = time.time() - t0
    print(f"coding DNA -> protein, {len(train_fragments)} training fragments (lengths 10-24, "
          f"{', '.join(TRAIN_IDS)}; new codons every epoch, half shuffled), test on unseen {TEST_ID}; "
          f"{epochs} epochs, LSTM {units} units, seed {args.seed}")  # fmt: skip
    print(f"{'length':>6} {'n':>4} | {'table res/exact':>15} | {'attn greedy':>13} | {'attn beam3':>13} | "
          f"{'no-attn greedy':>14} | {'diagonal':>8}")  # fmt: skip
    fmt = lambda a: f"{a[0]:.3f} / {a[1]:.3f}"  # noqa: E731
    for with_att, without in zip(results[True], results[False]):
        beam = fmt(with_att["beam"]) if "beam" in with_att else "-"
        mark = "*" if with_att["length"] <= train_len else " "
        print(f"{with_att['length']:>5}{mark} {with_att['n']:>4} | {fmt(with_att['baseline']):>15} | "
              f"{fmt(with_att['greedy']):>13} | {beam:>13} | {fmt(without['greedy']):>14} | "
              f"{diagonal[with_att['length']]:>8.3f}")  # fmt: skip
    print("per-residue / exact-sequence accuracy; * = a training length; the codon table is exact by construction;")
    print("diagonal: share of residues whose largest attention weight is on their own codon (teacher-forced)")
    print(f"final training loss: {losses[True][-1]:.4f} with attention, {losses[False][-1]:.4f} without")
    print(f"attention plot: {plot}")
    print(f"time {elapsed:.0f} s on {cpu_name()}")
    return {"results": results, "plot": plot, "seconds": elapsed, "train_fragments": len(train_fragments),
            "diagonal": diagonal, "losses": losses}  # fmt: skip


if __name__ == "__main__":
    main()

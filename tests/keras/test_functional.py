"""The functional API: Input, layers called on symbolic tensors, Model(inputs, outputs), shared
layers, encoder-decoder states and sub-models, checked against Keras 3 (torch backend) after a
weight transfer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import keras
from biolstm import keras as bk
from biolstm.keras import layers as L

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
B, T, D, H = 5, 6, 3, 4


def seq2seq(lib, layers):
    """The classic Keras LSTM encoder-decoder (teacher forcing), written as Keras users write it."""
    enc_in = lib.Input(shape=(None, D), name="encoder_inputs")
    _, h, c = layers.LSTM(H, return_state=True, name="encoder")(enc_in)
    dec_in = lib.Input(shape=(None, 2), name="decoder_inputs")
    decoder = layers.LSTM(H, return_sequences=True, return_state=True, name="decoder")
    dec_seq, _, _ = decoder(dec_in, initial_state=[h, c])
    out = layers.Dense(2, activation="softmax", name="out")(dec_seq)
    return lib.Model([enc_in, dec_in], out), enc_in, [h, c]


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(B, T, D)).astype("float32"), rng.normal(size=(B, T - 1, 2)).astype("float32")


def test_the_encoder_decoder_gives_keras_predictions_after_a_weight_transfer():
    theirs, k_in, k_states = seq2seq(keras, keras.layers)
    ours, o_in, o_states = seq2seq(bk, L)
    ours.set_weights(theirs.get_weights())
    a, b = _data()
    np.testing.assert_allclose(ours.predict([a, b]), theirs.predict([a, b], verbose=0), atol=1e-5)
    np.testing.assert_allclose(ours.predict({"encoder_inputs": a, "decoder_inputs": b}),
                               theirs.predict([a, b], verbose=0), atol=1e-5)  # fmt: skip
    # the inference encoder: a sub-model sharing the trained weights, as Keras users cut it out
    enc_ours, enc_theirs = bk.Model(o_in, o_states), keras.Model(k_in, k_states)
    for x, y in zip(enc_ours.predict(a), enc_theirs.predict(a, verbose=0)):
        np.testing.assert_allclose(x, y, atol=1e-5)
    assert enc_ours.get_layer("encoder") is ours.get_layer("encoder")  # one module, shared weights


def test_a_layer_called_twice_shares_its_weights_and_fit_trains_a_two_input_model():
    shared = L.LSTM(H, name="shared")
    x1, x2 = bk.Input((T, D), name="a"), bk.Input((T, D), name="b")
    h1, h2 = shared(x1), shared(x2)
    out = L.Dense(1, name="head")(L.Dense(H)(h1))  # reads one branch; the other only shares weights
    model = bk.Model([x1, x2], [out, h2])
    assert len(model.layers) == 3 and sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for layer in model.layers for p in layer.parameters())  # fmt: skip
    a, _ = _data(1)
    preds = model.predict([a, a])
    np.testing.assert_allclose(preds[1], model.predict([a, a])[1])
    torch.manual_seed(0)
    one = bk.Model([x1, x2], out)
    one.compile("adam", "mse")
    y = a[:, -1, :1]
    before = one.evaluate([a, a], y)
    one.fit([a, a], y, epochs=30, verbose=0)
    assert one.evaluate([a, a], y) < before  # it trains through both inputs' graph
    with pytest.raises(ValueError, match=r"x: expected a list of 2 arrays \(inputs \['a', 'b'\]\)"):
        one.predict(a)


def test_summary_lists_the_graph_and_errors_name_what_is_wrong(capsys):
    model, _, _ = seq2seq(bk, L)
    model.summary()
    text = capsys.readouterr().out
    assert "encoder_inputs (InputLayer)" in text and "decoder (LSTM)" in text
    assert "decoder_inputs, encoder" in text  # what the decoder reads: its input, then the encoder's states
    with pytest.raises(ValueError, match=r"outputs depend on .* which is not among the model's inputs"):
        bk.Model(bk.Input((T, D)), L.LSTM(H)(bk.Input((T, D))))


def test_several_outputs_train_with_a_loss_each_and_loss_weights():
    torch.manual_seed(0)
    x = bk.Input((T, D), name="seq")
    h = L.LSTM(H)(x)
    value = L.Dense(1, name="value")(h)
    kind = L.Dense(3, activation="softmax", name="kind")(h)
    model = bk.Model(x, [value, kind])
    model.compile("adam", loss={"value": "mse", "kind": "sparse_categorical_crossentropy"},
                  loss_weights={"value": 0.5, "kind": 2.0})  # fmt: skip
    a, _ = _data(4)
    y_value, y_kind = a[:, -1, :1], (a[:, 0, 0] > 0).astype("int64")
    before, value_loss, kind_loss = model.evaluate(a, [y_value, y_kind])  # Keras: [loss, each output's loss]
    p_value, p_kind = model.predict(a)
    assert value_loss == pytest.approx(np.mean((p_value - y_value) ** 2), rel=1e-5)
    assert kind_loss == pytest.approx(np.mean(-np.log(p_kind[np.arange(B), y_kind])), rel=1e-5)
    assert before == pytest.approx(0.5 * value_loss + 2.0 * kind_loss, rel=1e-5)  # the weighted sum
    model.fit(a, {"value": y_value, "kind": y_kind}, epochs=40, verbose=0)
    assert model.evaluate(a, [y_value, y_kind])[0] < before
    assert [p.shape for p in model.predict(a)] == [(B, 1), (B, 3)]
    with pytest.raises(ValueError, match=r"loss: unknown output 'other'; expected \['value', 'kind'\]"):
        model.compile("adam", loss={"value": "mse", "other": "mse"})
    with pytest.raises(ValueError, match=r"y: expected 2 \(one per output \['value', 'kind'\]\), got 1"):
        model.fit(a, [y_value], epochs=1, verbose=0)


def two_branch(lib, layers):
    """A sequence branch and a tabular branch joined by Concatenate (the seed FAQ's multimodal case)."""
    seq = lib.Input(shape=(T, D), name="visits")
    tab = lib.Input(shape=(3,), name="static")
    h = layers.LSTM(H)(seq)
    s = layers.Dense(2, activation="relu")(tab)
    out = layers.Dense(1, activation="sigmoid")(layers.Concatenate()([h, s]))
    return lib.Model(inputs=[seq, tab], outputs=out)


def test_a_two_input_model_gives_keras_predictions_after_a_weight_transfer():
    theirs, ours = two_branch(keras, keras.layers), two_branch(bk, L)
    ours.set_weights(theirs.get_weights())
    a, _ = _data(2)
    tab = np.random.default_rng(3).normal(size=(B, 3)).astype("float32")
    np.testing.assert_allclose(ours.predict([a, tab]), theirs.predict([a, tab], verbose=0), atol=1e-5)
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in theirs.get_weights()]


def test_save_and_load_rebuild_the_graph_from_json_with_the_same_predictions(tmp_path):
    import json

    model, _, _ = seq2seq(bk, L)
    model.compile("adam", "categorical_crossentropy")
    a, b = _data(5)
    before = model.predict([a, b])
    folder = model.save(tmp_path / "s2s")
    meta = json.loads((folder / "model.json").read_text())
    assert meta["config"]["class_name"] == "Model" and len(meta["config"]["nodes"]) == 3
    loaded = bk.load_model(folder)
    assert isinstance(loaded, bk.Model) and loaded.input_names == ["encoder_inputs", "decoder_inputs"]
    np.testing.assert_array_equal(loaded.predict([a, b]), before)
    assert loaded.compiled["loss"] == "categorical_crossentropy"
    # several outputs keep their losses and weights
    x = bk.Input((T, D))
    h = L.LSTM(H)(x)
    two = bk.Model(x, [L.Dense(1, name="v")(h), L.Dense(2, name="w")(h)])
    two.compile("adam", loss=["mse", "mae"], loss_weights=[1.0, 3.0])
    back = bk.load_model(two.save(tmp_path / "two"))
    assert back.output_losses == ["mse", "mae"] and back.loss_weights == [1.0, 3.0]
    for p, q in zip(back.predict(a), two.predict(a)):
        np.testing.assert_array_equal(p, q)


def test_the_seed_example_in_functional_form_runs_and_matches_keras_after_a_weight_transfer(capsys):
    import re
    import runpy
    from pathlib import Path

    path = Path(__file__).parents[2] / "examples" / "seed_functional.py"
    ns = runpy.run_path(str(path), run_name="__main__")
    model = ns["model"]
    assert len(model.history.history["loss"]) == 10 and "Epoch 10/10" in capsys.readouterr().out
    # the same code with Keras' imports: the same predictions after a weight transfer
    source = path.read_text()
    source = re.sub(r"from biolstm\.keras import Input, Model", "from keras import Input, Model", source)
    source = re.sub(r"from biolstm\.keras\.layers import", "from keras.layers import", source)
    source = source.replace("model.fit(X, y, epochs=10, batch_size=32)", "")  # no need to train Keras' copy
    theirs = {}
    exec(compile(source, "seed_functional_keras", "exec"), theirs)  # our own example file, with Keras imports
    theirs["model"].set_weights(model.get_weights())
    X = ns["X"].astype("float32")
    np.testing.assert_allclose(theirs["model"].predict(X, verbose=0), model.predict(X), atol=1e-5)


def test_the_multimodal_example_runs_on_the_bundled_data():
    import runpy
    from pathlib import Path

    ns = runpy.run_path(str(Path(__file__).parents[2] / "examples" / "multimodal_pbc.py"))
    results = ns["main"](["--epochs", "2", "--seeds", "0"])
    assert set(results[0]) == {"sequence alone", "sequence + static"}
    assert all(0.0 <= v <= 1.0 for v in results[0].values())
    model = ns["build"](16, 22, True)
    assert model.input_names == ["visits", "static"] and len(model.layers) == 5  # Masking LSTM Dense Concatenate Dense


def seq2seq_attention(lib, layers):
    """The Keras seq2seq with Luong attention over the encoder's outputs (token ids in and out)."""
    enc_in = lib.Input(shape=(None,), name="source")
    enc_emb = layers.Embedding(12, 6, mask_zero=True)(enc_in)
    enc_seq, h, c = layers.LSTM(H, return_sequences=True, return_state=True)(enc_emb)
    dec_in = lib.Input(shape=(None,), name="target")
    dec_emb = layers.Embedding(9, 6, mask_zero=True)(dec_in)
    dec_seq = layers.LSTM(H, return_sequences=True)(dec_emb, initial_state=[h, c])
    context = layers.Attention()([dec_seq, enc_seq])
    out = layers.Dense(9, activation="softmax")(layers.Concatenate()([dec_seq, context]))
    return lib.Model([enc_in, dec_in], out)


def test_seq2seq_with_attention_and_padding_gives_keras_predictions_after_a_weight_transfer():
    theirs, ours = seq2seq_attention(keras, keras.layers), seq2seq_attention(bk, L)
    ours.set_weights(theirs.get_weights())
    rng = np.random.default_rng(6)
    src = rng.integers(1, 12, size=(B, 7))
    src[:, 5:] = 0  # padded source steps: masked out of the encoder and of attention
    tgt = rng.integers(1, 9, size=(B, 4))
    np.testing.assert_allclose(ours.predict([src, tgt]), theirs.predict([src, tgt], verbose=0), atol=1e-5)
    kinds = [type(layer).__name__ for layer in theirs.layers if type(layer).__name__ != "InputLayer"]
    assert [type(layer).__name__ for layer in ours.layers] == kinds  # Keras' order: by depth, then first seen


def test_sparse_categorical_crossentropy_takes_one_class_per_step_as_keras():
    rng = np.random.default_rng(7)
    probs = rng.dirichlet(np.ones(5), size=(B, T)).astype("float32")  # (B, T, 5)
    ids = rng.integers(0, 5, size=(B, T))
    from biolstm.train.trainer import compute_loss

    ours = float(compute_loss("sparse_categorical_crossentropy", torch.from_numpy(probs), torch.from_numpy(ids)))
    theirs = float(keras.losses.SparseCategoricalCrossentropy()(ids, probs))
    assert ours == pytest.approx(theirs, rel=1e-5)


def two_outputs(lib, layers):
    seq = lib.Input(shape=(T, D), name="seq")
    tab = lib.Input(shape=(3,), name="tab")
    h = layers.Concatenate()([layers.LSTM(H)(seq), tab])
    return lib.Model([seq, tab], [layers.Dense(1, activation="sigmoid", name="cls")(h), layers.Dense(2, name="reg")(h)])


def test_per_output_losses_and_metrics_have_keras_names_order_and_values():
    theirs, ours = two_outputs(keras, keras.layers), two_outputs(bk, L)
    ours.set_weights(theirs.get_weights())
    a, _ = _data(5)
    rng = np.random.default_rng(8)
    tab, y_reg = rng.normal(size=(B, 3)).astype("float32"), rng.normal(size=(B, 2)).astype("float32")
    y_cls = (a[:, -1, :1] > 0).astype("float32")
    settings = {"loss": {"cls": "binary_crossentropy", "reg": "mse"}, "loss_weights": {"cls": 1.0, "reg": 0.5},
                "metrics": {"cls": ["accuracy"], "reg": ["mae", "mse"]}}  # fmt: skip
    theirs.compile("adam", **settings)
    ours.compile("adam", **settings)
    want = theirs.evaluate([a, tab], [y_cls, y_reg], verbose=0, return_dict=True)
    got = ours.evaluate([a, tab], [y_cls, y_reg], return_dict=True)
    assert sorted(got) == sorted(want) == ["cls_accuracy", "cls_loss", "loss", "reg_loss", "reg_mae", "reg_mse"]
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-4, abs=1e-6), k
    # the list form in Keras' order: loss, each output's loss, then the metrics as compiled
    order = ["loss", "cls_loss", "reg_loss", "cls_accuracy", "reg_mae", "reg_mse"]
    np.testing.assert_allclose(ours.evaluate([a, tab], [y_cls, y_reg]), [want[k] for k in order], rtol=1e-4)
    hist = ours.fit([a, tab], [y_cls, y_reg], epochs=2, verbose=0, validation_split=0.25)
    keras_hist = theirs.fit([a, tab], [y_cls, y_reg], epochs=1, verbose=0, validation_split=0.25)
    assert sorted(hist.history) == sorted(keras_hist.history)
    # list-of-lists form, and Keras' refusal of one flat list for several outputs
    ours.compile("adam", loss=["binary_crossentropy", "mse"], metrics=[["accuracy"], None])
    assert list(ours.evaluate([a, tab], [y_cls, y_reg], return_dict=True)) == ["loss", "cls_loss", "reg_loss",
                                                                               "cls_accuracy"]  # fmt: skip
    with pytest.raises(ValueError, match=r"metrics: a model with outputs \['cls', 'reg'\] takes a dict"):
        ours.compile("adam", loss=["binary_crossentropy", "mse"], metrics=["mae"])
    with pytest.raises(ValueError, match=r"metrics\['reg'\]: expected names from .*, got 'r2'"):
        ours.compile("adam", loss=["binary_crossentropy", "mse"], metrics={"reg": ["r2"]})


def test_padded_target_steps_are_masked_out_of_the_loss_as_keras():
    """Keras weights each step's loss by the output's mask (here from the decoder's
    Embedding(mask_zero=True)), so padded target steps do not count."""
    theirs, ours = seq2seq_attention(keras, keras.layers), seq2seq_attention(bk, L)
    ours.set_weights(theirs.get_weights())
    rng = np.random.default_rng(9)
    src, tgt = rng.integers(1, 12, size=(B, 7)), rng.integers(1, 9, size=(B, 5))
    src[:, 5:], tgt[:3, 3:] = 0, 0
    y = rng.integers(1, 9, size=(B, 5))
    for lib_model in (theirs, ours):
        lib_model.compile("adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    want = theirs.evaluate([src, tgt], y, verbose=0, return_dict=True)
    got = ours.evaluate([src, tgt], y, return_dict=True)
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-5)
    assert got["accuracy"] == pytest.approx(want["accuracy"], rel=1e-5)


def _with_keras_imports(name: str) -> tuple[dict, dict]:
    """An example run as it is (biolstm) and the same file with its biolstm.keras imports turned
    into Keras' (nothing else changed)."""
    import re
    import runpy
    from pathlib import Path

    path = Path(__file__).parents[2] / "examples" / name
    ours = runpy.run_path(str(path), run_name=name)
    source = re.sub(r"^from biolstm\.keras(\.\w+)? import", r"from keras\1 import", path.read_text(), flags=re.M)
    assert not re.search(r"^\s*(from|import) biolstm\.keras", source, flags=re.M)
    theirs = {"__name__": name, "__file__": str(path)}
    exec(compile(source, f"{name} (Keras imports)", "exec"), theirs)  # our own example file
    return ours, theirs


def test_the_multimodal_example_with_keras_imports_gives_the_same_predictions_after_a_weight_transfer():
    ours, theirs = _with_keras_imports("multimodal_pbc.py")
    _, _, (xs, ss, _) = ours["prepare"]()
    for with_static in (False, True):
        shape = (xs.shape[1], xs.shape[2], with_static)
        a, b = ours["build"](*shape), theirs["build"](*shape)
        a.set_weights(b.get_weights())
        inputs = [xs, ss] if with_static else xs
        np.testing.assert_allclose(a.predict(inputs), b.predict(inputs, verbose=0), atol=1e-5)


def test_the_translation_example_with_keras_imports_gives_the_same_predictions_after_a_weight_transfer():
    ours, theirs = _with_keras_imports("translate_dna.py")
    fragments, test = ours["make_data"](quick=True)
    dna, prot = ours["epoch_pairs"](fragments[::7], np.random.default_rng(0))  # lengths 10-24: padded batches
    x, d_in, _ = ours["encode"](dna, prot)
    d_in = ours["word_dropout"](d_in, np.random.default_rng(1), 0.3)
    assert (x == 0).any() and (d_in == ours["UNK"]).any()
    for attention in (True, False):
        a, b = ours["build_models"](16, 8, attention), theirs["build_models"](16, 8, attention)
        a["model"].set_weights(b["model"].get_weights())  # the sub-models share these layers
        np.testing.assert_allclose(a["model"].predict([x, d_in]), b["model"].predict([x, d_in], verbose=0), atol=1e-5)
        tx, _, _ = ours["encode"](*test[12])
        mine, keras_out = a["encoder"].predict(tx), b["encoder"].predict(tx, verbose=0)
        for p, q in zip(mine, keras_out):
            np.testing.assert_allclose(p, q, atol=1e-5)
        tok = np.full((len(tx), 1), ours["START"], dtype="int64")
        step_in = [tok, mine[1], mine[2], mine[0]]
        for p, q in zip(a["step"].predict(step_in), b["step"].predict(step_in, verbose=0)):
            np.testing.assert_allclose(p, q, atol=1e-5)
        assert ours["greedy_decode"](a, tx) == theirs["greedy_decode"](b, tx)

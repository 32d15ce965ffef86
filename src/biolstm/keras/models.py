"""``Sequential``: Keras' model API on biolstm's Trainer.

The seed article's example runs unchanged apart from its imports::

    from biolstm.keras.models import Sequential
    from biolstm.keras.layers import LSTM, Dense

``fit`` trains through :class:`biolstm.train.Trainer` (the project's one training loop);
``save`` writes safetensors weights plus a JSON description of the layers, never a pickle.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..train.checkpoint import (
    CheckpointError,
    load_verified,
    refuse_pickle,
    save_tensors,
    sha256_file,
    write_directory_atomically,
    write_json,
)
from ..train.metrics import METRICS
from ..train.trainer import LOSSES, OPTIMIZERS, History, Trainer, TrainerConfig, resolve_device
from . import optimizers as kopt
from .functional import GraphMixin
from .layers import InputLayer, Layer, layer_from_config

_LOSS_ALIASES = {"mean_squared_error": "mse", "mean_absolute_error": "mae", "huber_loss": "huber"}
_FORMAT = "biolstm-keras-model/1"
_NAMED_OPTIMIZERS = {"adam": kopt.Adam, "adamw": kopt.AdamW, "rmsprop": kopt.RMSprop, "sgd": kopt.SGD}


class Sequential(nn.Module):
    """A linear stack of layers (``biolstm.keras.layers``)."""

    def __init__(self, layers: list[Layer] | None = None, name: str | None = None) -> None:
        super().__init__()
        self.layers_ = nn.ModuleList()
        self.name = name or "sequential"
        self.compiled: dict[str, Any] | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.stop_training = False
        self._packing = False  # under the Trainer: outputs and their masks packed in one tensor
        for layer in layers or []:
            self.add(layer)

    single_output = True

    @property
    def layers(self) -> list[Layer]:
        return list(self.layers_)

    def add(self, layer: Layer) -> None:
        from .functional import KerasTensor

        if isinstance(layer, KerasTensor) and not len(self.layers_) and layer.node is None:  # add(Input(shape))
            layer = InputLayer(layer.shape, name=layer.name)
        if not isinstance(layer, Layer):
            raise TypeError(f"layer: expected a biolstm.keras layer, got {type(layer).__name__}")
        self.layers_.append(layer)
        if len(self.layers_) == 1 and layer.input_shape_arg is not None:
            self.build(layer.input_shape_arg)
        elif len(self.layers_) > 1 and self.layers_[0].built:
            self.build(self.layers_[0].input_shape_)

    def build(self, input_shape) -> tuple:
        """Create every layer's parameters for inputs of ``input_shape`` (no batch axis)."""
        shape = tuple(input_shape)
        self.input_shape_ = shape
        for layer in self.layers_:
            shape = layer.ensure_built(shape)
        self.output_shape_ = shape
        return shape

    @property
    def built(self) -> bool:
        return len(self.layers_) > 0 and all(layer.built for layer in self.layers_)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = None
        for layer in self.layers_:
            new_mask = layer.compute_mask(x, mask)
            x = layer(x, mask)
            mask = new_mask
        return self._pack([x], [mask]) if self._packing else x

    # ------------------------------------------------------------------ loss and metrics, as Keras
    # The Trainer sees one tensor per batch: while it trains or evaluates, forward packs every
    # output and its mask (the padded steps of an Embedding(mask_zero=True) or Masking input)
    # side by side, and loss() / packed_metrics() unpack them. As in Keras, a masked step counts
    # in neither the loss nor the metrics.
    def _pack(self, outs: list[torch.Tensor], masks: list) -> torch.Tensor:
        self._out_shapes = [tuple(o.shape[1:]) for o in outs]
        self._mask_shapes = [None if m is None else tuple(m.shape[1:]) for m in masks]
        parts = []
        for o, m in zip(outs, masks):
            parts.append(o.reshape(len(o), -1).float())
            if m is not None:
                parts.append(m.reshape(len(m), -1).float())
        return torch.cat(parts, 1)

    def output_names(self) -> list[str]:
        return ["output"]

    def _unpack(self, out: torch.Tensor, y: torch.Tensor):
        """(output, target, mask or None, loss name, loss weight, output name) per output."""
        a = b = 0
        t_shapes = [tuple(y.shape[1:])] if self.single_output else self._target_shapes
        for shape, m_shape, t_shape, name, w, oname in zip(self._out_shapes, self._mask_shapes, t_shapes,
                                                           self.output_losses, self.loss_weights,
                                                           self.output_names()):  # fmt: skip
            n_out, n_t = int(np.prod(shape)), int(np.prod(t_shape))
            o = out[:, a : a + n_out].reshape(len(out), *shape)
            a += n_out
            mask = None
            if m_shape is not None:
                n_m = int(np.prod(m_shape))
                mask = out[:, a : a + n_m].reshape(len(out), *m_shape) > 0.5
                a += n_m
            target = y if self.single_output else y[:, b : b + n_t].reshape(len(y), *t_shape)
            if name in ("sparse_categorical_crossentropy", "cross_entropy"):
                target = target.round().long()
            yield o, target, mask, name, w, oname
            b += n_t

    @staticmethod
    def _valid_steps(o: torch.Tensor, target: torch.Tensor, mask, weights=None):
        """The unmasked steps as rows (Keras weights each step's loss and metrics by the mask)."""
        if mask is None or mask.shape != o.shape[: mask.dim()] or target.shape[: mask.dim()] != mask.shape:
            return o, target, weights
        if weights is not None:
            weights = weights.reshape(-1, *[1] * (mask.dim() - 1)).expand(mask.shape)[mask]
        return o[mask], target[mask], weights

    def loss(self, out: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """The weighted sum of the outputs' losses, from packed outputs (and masks) and targets;
        ``weights``: per-sample weights (class_weight)."""
        from ..train.trainer import compute_loss

        total = out.new_zeros(())
        for o, target, mask, name, w, _ in self._unpack(out, y):
            o, target, sw = self._valid_steps(o, target, mask, weights)
            if len(o):  # every step masked: 0, as Keras' divide_no_nan
                total = total + w * compute_loss(name, o, target, sw)
        return total

    def packed_metrics(self, out: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """The compiled metrics (with several outputs: each output's unweighted loss, then its
        metrics, with Keras' names ``{output}_loss`` and ``{output}_{metric}``)."""
        from ..train.metrics import compute_metric
        from ..train.trainer import compute_loss

        losses, metrics = {}, {}
        with torch.no_grad():
            for (o, target, mask, loss, _, oname), ms in zip(self._unpack(out, y), self.output_metrics):
                o, target, _ = self._valid_steps(o, target, mask)
                prefix = "" if self.single_output else f"{oname}_"
                if not self.single_output:
                    losses[f"{oname}_loss"] = float(compute_loss(loss, o, target)) if len(o) else 0.0
                for m in ms:
                    metrics[f"{prefix}{m}"] = compute_metric(m, o, target, loss)
        return {**losses, **metrics}

    def sample_weights(self, y: torch.Tensor, class_weight: dict | None) -> torch.Tensor | None:
        """Per-sample weights from Keras' ``class_weight`` (one output only, as Keras)."""
        from ..train.trainer import class_weights_for

        if not class_weight:
            return None
        if not self.single_output:
            raise ValueError("class_weight: only for a model with one output, as in Keras")
        return class_weights_for(y, class_weight, self.output_losses[0])

    # ------------------------------------------------------------------ description
    def summary(self, print_fn=print) -> None:
        """Layers, output shapes and parameter counts, as Keras prints them."""
        if not self.built:
            raise ValueError(
                "summary: the model is not built yet; give input_shape= to the first layer or "
                "call build(input_shape) or fit() first"
            )
        rows, shape = [], self.input_shape_
        for layer in self.layers_:
            shape = layer.compute_output_shape(shape)
            trainable = sum(p.numel() for p in layer.parameters() if p.requires_grad)
            rows.append(
                (
                    f"{layer.layer_name or type(layer).__name__.lower()} ({type(layer).__name__})",
                    str((None, *shape)),
                    f"{trainable:,}",
                )
            )
        w = [max(len(r[i]) for r in [*rows, ("Layer (type)", "Output Shape", "Param #")]) + 2 for i in range(3)]
        line = "-" * sum(w)
        out = [
            f'Model: "{self.name}"',
            line,
            "Layer (type)".ljust(w[0]) + "Output Shape".ljust(w[1]) + "Param #".rjust(w[2]),
            "=" * sum(w),
        ]
        out += [r[0].ljust(w[0]) + r[1].ljust(w[1]) + r[2].rjust(w[2]) for r in rows]
        total = sum(p.numel() for p in self.parameters() if p.requires_grad)
        out += ["=" * sum(w), f"Total params: {total:,}", line]
        print_fn("\n".join(out))

    def reset_states(self) -> None:
        """Forget the state every ``stateful=True`` layer carried from its previous batch (call it
        between independent long sequences, e.g. after each epoch of truncated BPTT)."""
        for layer in self.layers:
            if getattr(layer, "stateful", False):
                layer.reset_states()

    reset_state = reset_states  # Keras 3's name

    def count_params(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    # ------------------------------------------------------------------ training
    def compile(self, optimizer="adam", loss="mse", metrics=None) -> None:
        """``optimizer``: a name ('adam', 'sgd', 'rmsprop', 'adamw') or a torch optimizer factory /
        instance; ``loss``: a Keras loss name; ``metrics``: e.g. ['accuracy']."""
        loss = _LOSS_ALIASES.get(loss, loss)
        if loss not in LOSSES:
            raise ValueError(f"loss: expected one of {', '.join(LOSSES)}, got {loss!r}")
        metrics = list(metrics or [])
        for m in metrics:
            if m not in METRICS:
                raise ValueError(f"metrics: expected names from {', '.join(METRICS)}, got {m!r}")
        if isinstance(optimizer, str) and optimizer not in _NAMED_OPTIMIZERS:
            raise ValueError(f"optimizer: expected one of {', '.join(OPTIMIZERS)} or an optimizer, got {optimizer!r}")
        self.compiled = {"optimizer": optimizer, "loss": loss, "metrics": metrics}
        self.output_losses, self.loss_weights, self.output_metrics = [loss], [1.0], [metrics]
        self.optimizer = None

    def _trainer(
        self, epochs: int = 1, batch_size: int = 32, shuffle: bool = True, verbose: int = 0, callbacks=None
    ) -> Trainer:
        if self.compiled is None:
            raise ValueError("fit: compile the model first (model.compile(optimizer, loss, metrics))")
        opt = self.compiled["optimizer"]
        if isinstance(opt, str):  # Keras' names mean Keras' defaults (e.g. Adam's epsilon=1e-7)
            opt = _NAMED_OPTIMIZERS[opt]()
        clip = opt if isinstance(opt, kopt.Optimizer) else kopt.Optimizer()
        cfg = TrainerConfig(
            epochs=epochs,
            batch_size=batch_size,
            shuffle=shuffle,
            loss="model",  # loss() and packed_metrics(): per output, masks applied
            seed=int(torch.initial_seed() % 2**31),
            clipnorm=clip.clipnorm,
            clipvalue=clip.clipvalue,
        )
        if self.optimizer is None and self.built:  # as in Keras, model.optimizer exists once training starts
            if isinstance(opt, kopt.Optimizer):
                self.optimizer = opt.build(self.parameters())
            elif callable(opt) and not isinstance(opt, torch.optim.Optimizer):
                self.optimizer = opt(self.parameters())  # a factory, e.g. functools.partial(torch.optim.SGD, lr=.1)
            else:
                self.optimizer = opt  # a torch optimizer over this model's parameters
        self._packing = True
        trainer = Trainer(self, cfg, optimizer=self.optimizer, callbacks=callbacks, verbose=verbose)
        return trainer

    def fit(
        self,
        x=None,
        y=None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: int = 1,
        callbacks=None,
        validation_split: float = 0.0,
        validation_data=None,
        shuffle: bool = True,
        class_weight: dict | None = None,
    ) -> History:
        """Train as Keras does; returns a History whose ``history`` has Keras keys."""
        x, y = self._as_inputs(x, "x"), self._as_targets(y, "y")
        if not self.built:
            self.build(tuple(x.shape[1:]))
        if validation_data is not None:
            validation_data = (
                self._as_inputs(validation_data[0], "validation_data"),
                self._as_targets(validation_data[1], "validation_data"),
            )
        elif validation_split:
            if not 0.0 < validation_split < 1.0:
                raise ValueError(f"validation_split: expected a float in (0, 1), got {validation_split}")
            cut = int(len(y) * (1 - validation_split))  # Keras: the last samples, before shuffling
            head, tail = slice(None, cut), slice(cut, None)
            x, y, validation_data = _rows(x, head), y[:cut], (_rows(x, tail), y[cut:])
        trainer = self._trainer(epochs, batch_size or 32, shuffle, verbose, callbacks)
        history = trainer.fit(x, y, validation_data=validation_data, class_weight=class_weight)
        self.optimizer = trainer.optimizer
        self.history = history
        return history

    def evaluate(self, x, y, batch_size: int | None = None, verbose: int = 0, return_dict: bool = False):
        """Loss, or [loss, *metrics] when metrics were compiled (with several outputs: [loss,
        *the outputs' losses, *their metrics]); ``return_dict=True`` gives them by Keras' names."""
        trainer = self._trainer(batch_size=batch_size or 32)
        res = trainer.evaluate(self._as_inputs(x, "x"), self._as_targets(y, "y"))
        if return_dict:
            return res
        values = list(res.values())  # loss first, then the metrics in compile order
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size: int | None = None, verbose: int = 0) -> np.ndarray:
        """Outputs for ``x`` in eval mode, as a numpy array."""
        from ..train.inputs import Inputs

        x = self._as_inputs(x, "x")
        if not self.built:
            self.build(tuple(x.shape[1:]))
        self._packing = False
        device = resolve_device(None)
        self.to(device)
        self.eval()
        inputs, outs = Inputs(x), []
        with torch.no_grad():
            for idx in torch.arange(len(inputs)).split(batch_size or 32):
                args, kwargs = inputs.take(idx, device)
                out = self(*args, **kwargs)
                outs.append([o.cpu() for o in out] if isinstance(out, tuple) else out.cpu())
        if isinstance(outs[0], list):  # several outputs: one array each, as Keras
            return [torch.cat([o[k] for o in outs]).numpy() for k in range(len(outs[0]))]
        return torch.cat(outs).numpy()

    def _as_inputs(self, x, name: str):
        return _to_tensor(x, name)

    def _as_targets(self, y, name: str):
        return _to_tensor(y, name)

    # ------------------------------------------------------------------ weights
    def get_weights(self) -> list[np.ndarray]:
        """All layers' weights in Keras' format and order (kernel, recurrent_kernel, bias, ...)."""
        return [w.cpu().numpy().copy() for layer in self.layers_ for w in layer.get_weights()]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Load a Keras-format weight list, e.g. ``keras_model.get_weights()``."""
        if not self.built:
            raise ValueError("set_weights: the model is not built yet; give input_shape= or call build()")
        counts = [len(layer.get_weights()) for layer in self.layers_]
        if len(weights) != sum(counts):
            raise ValueError(f"weights: expected {sum(counts)} arrays (Keras' order), got {len(weights)}")
        start = 0
        for layer, n in zip(self.layers_, counts):
            layer.set_weights([np.asarray(w) for w in weights[start : start + n]])
            start += n

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "input_shape": list(self.input_shape_) if self.built else None,
            "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()} for layer in self.layers_],
        }

    def _compile_record(self) -> dict | None:
        """compile()'s arguments, to compile a loaded model the same way (named optimizers only)."""
        if self.compiled is not None and isinstance(self.compiled["optimizer"], str):
            return dict(self.compiled)
        return None

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``path`` as a folder: model.safetensors + model.json (layers, compile settings)."""
        if not self.built:
            raise ValueError("save: the model is not built yet; fit or build it first")
        meta = {"format": _FORMAT, "config": self.get_config(), "compile": self._compile_record()}

        def write(tmp: Path) -> None:
            save_tensors(tmp / "model.safetensors", dict(self.state_dict()))
            write_json(tmp / "model.json", dict(meta, sha256=sha256_file(tmp / "model.safetensors")))

        return write_directory_atomically(Path(path), write)


class Model(GraphMixin, Sequential):
    """Keras' functional model: ``Model(inputs=..., outputs=...)`` over layers called on
    ``Input`` tensors (see :mod:`biolstm.keras.functional`). Several inputs are given to
    ``fit``/``predict``/``evaluate`` as a list (in the order of ``inputs``) or a dict keyed by
    the Inputs' names; several outputs come back from ``predict`` as a list of arrays and
    train with a loss per output and loss weights (:meth:`compile`)."""

    def __init__(self, inputs=None, outputs=None, name: str | None = None) -> None:
        Sequential.__init__(self, name=name or "functional")
        if inputs is None or outputs is None:
            raise TypeError("Model: expected Model(inputs=..., outputs=...) from Input tensors and layer calls")
        self._init_graph(inputs, outputs)

    @property
    def built(self) -> bool:
        return True  # every layer was built when it was called on its symbolic input

    def forward(self, *args, **kwargs):
        if not self._packing:
            return self.run_graph(args, kwargs)
        return self._pack(*self.run_graph(args, kwargs, with_masks=True))

    # ------------------------------------------------------------------ several outputs
    def output_names(self) -> list[str]:
        names = []
        for k, t in enumerate(self.outputs):
            layer = t.node.layer if t.node is not None else None
            names.append(getattr(layer, "layer_name", None) or f"output_{k + 1}")
        return names

    def compile(self, optimizer="adam", loss="mse", metrics=None, loss_weights=None) -> None:
        """As Sequential's; with several outputs ``loss`` may be one name for all, a list (one
        per output) or a dict keyed by the output layers' names, and ``loss_weights`` a list or
        dict of weights (1 each by default): the training loss is their weighted sum. ``metrics``
        then names metrics per output, as Keras: a dict by output name (a name or a list of names
        each) or a list with one list per output. History and ``evaluate(return_dict=True)`` have
        Keras' keys: ``loss``, ``{output}_loss`` (unweighted) and ``{output}_{metric}``."""
        if self.single_output:
            if loss_weights is not None:
                raise ValueError("loss_weights: only for a model with several outputs")
            return Sequential.compile(self, optimizer, loss, metrics)
        names = self.output_names()
        losses = [self._per_output(loss, names, "loss", None)[k] for k in range(len(names))]
        weights = self._per_output(loss_weights, names, "loss_weights", 1.0) if loss_weights is not None else \
            [1.0] * len(names)  # fmt: skip
        for k, name in enumerate(losses):
            losses[k] = _LOSS_ALIASES.get(name, name)
            if losses[k] not in LOSSES or losses[k] == "model":
                raise ValueError(f"loss[{names[k]!r}]: expected one of {', '.join(LOSSES)}, got {name!r}")
        per_output = self._output_metrics(metrics, names)
        Sequential.compile(self, optimizer, losses[0], None)
        self.compiled["loss"] = losses
        self.output_losses, self.loss_weights = losses, [float(w) for w in weights]
        self.output_metrics = per_output

    def _output_metrics(self, metrics, names: list[str]) -> list[list[str]]:
        """Metric names per output, from Keras' dict or list-of-lists forms."""
        if not metrics:
            return [[] for _ in names]
        if isinstance(metrics, dict):
            per = self._per_output(metrics, names, "metrics", [])
        elif isinstance(metrics, (list, tuple)) and all(isinstance(m, (list, tuple)) or m is None for m in metrics):
            per = self._per_output(list(metrics), names, "metrics", [])
        else:
            raise ValueError(f"metrics: a model with outputs {names} takes a dict by output name or a list with "
                             f"one list per output, got {metrics!r}")  # fmt: skip
        out = []
        for name, ms in zip(names, per):
            ms = [ms] if isinstance(ms, str) else list(ms or [])
            for m in ms:
                if m not in METRICS:
                    raise ValueError(f"metrics[{name!r}]: expected names from {', '.join(METRICS)}, got {m!r}")
            out.append(ms)
        return out

    @staticmethod
    def _per_output(value, names: list[str], what: str, default) -> list:
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(names))
            if unknown:
                raise ValueError(f"{what}: unknown output {unknown[0]!r}; expected {names}")
            if default is None and len(value) != len(names):
                raise ValueError(f"{what}: expected one per output {names}, got {sorted(value)}")
            return [value.get(n, default) for n in names]
        if isinstance(value, (list, tuple)):
            if len(value) != len(names):
                raise ValueError(f"{what}: expected {len(names)} (one per output {names}), got {len(value)}")
            return list(value)
        return [value] * len(names)

    def _as_targets(self, y, name: str):
        if self.single_output:
            return _to_tensor(y, name)
        names = self.output_names()
        ys = self._per_output(y, names, name, None) if isinstance(y, (dict, list, tuple)) else None
        if ys is None:
            raise ValueError(f"{name}: expected one array per output {names} (a list or a dict by name)")
        ts = [_to_tensor(v, f"{name}[{n!r}]") for v, n in zip(ys, names)]
        if len({len(v) for v in ts}) != 1:
            counts = [len(v) for v in ts]
            raise ValueError(f"{name}: expected the same number of samples for every output, got {counts}")
        self._target_shapes = [tuple(v.shape[1:]) for v in ts]
        return torch.cat([v.reshape(len(v), -1).float() for v in ts], 1)  # packed; loss() unpacks

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """A layer by its name (or its index in ``layers``)."""
        if index is not None:
            return self.layers[index]
        for layer in self.layers_:
            if layer.layer_name == name:
                return layer
        names = [layer.layer_name for layer in self.layers_ if layer.layer_name]
        raise ValueError(f"get_layer: no layer named {name!r}; the named layers are {names}")

    def _as_inputs(self, x, name: str):
        if isinstance(x, dict):
            unknown = sorted(set(x) - set(self.input_names))
            if unknown:
                raise ValueError(f"{name}: unknown input {unknown[0]!r}; expected {self.input_names}")
            missing = [n for n in self.input_names if n not in x]
            if missing:
                raise ValueError(f"{name}: expected an array for input {missing[0]!r}")
            return {n: _to_tensor(x[n], f"{name}[{n!r}]") for n in self.input_names}
        if len(self.inputs) == 1:
            return {self.input_names[0]: _to_tensor(x[0] if isinstance(x, (list, tuple)) and len(x) == 1 else x, name)}
        if not isinstance(x, (list, tuple)) or len(x) != len(self.inputs):
            raise ValueError(f"{name}: expected a list of {len(self.inputs)} arrays (inputs {self.input_names}) "
                             "or a dict keyed by their names")  # fmt: skip
        return {n: _to_tensor(a, f"{name}[{k}]") for k, (n, a) in enumerate(zip(self.input_names, x))}

    def summary(self, print_fn=print) -> None:
        """Layers in the order they run, their output shapes, parameters and what they read."""
        names = {}
        for node in self.nodes_:
            names.setdefault(node.layer, node.layer.layer_name or f"{type(node.layer).__name__.lower()}_{len(names)}")
        rows = []
        for t, n in zip(self.inputs, self.input_names):
            rows.append((f"{n} (InputLayer)", str((None, *t.shape)), "0", ""))
        produced = {t.id: n for t, n in zip(self.inputs, self.input_names)}
        for node in self.nodes_:
            name = names[node.layer]
            for t in node.outputs:
                produced[t.id] = name
            shapes = [str((None, *o.shape)) for o in node.outputs]
            params = sum(p.numel() for p in node.layer.parameters() if p.requires_grad)
            reads = ", ".join(dict.fromkeys(produced.get(p.id, "?") for p in node.parents()))
            rows.append((f"{name} ({type(node.layer).__name__})", ", ".join(shapes), f"{params:,}", reads))
        head = ("Layer (type)", "Output Shape", "Param #", "Connected to")
        w = [max(len(r[i]) for r in [*rows, head]) + 2 for i in range(4)]
        line = "-" * sum(w)
        out = [f'Model: "{self.name}"', line, head[0].ljust(w[0]) + head[1].ljust(w[1]) + head[2].rjust(w[2]) + "  "
               + head[3], "=" * sum(w)]  # fmt: skip
        out += [r[0].ljust(w[0]) + r[1].ljust(w[1]) + r[2].rjust(w[2]) + "  " + r[3] for r in rows]
        out += ["=" * sum(w), f"Total params: {self.count_params():,}", line]
        print_fn("\n".join(out))

    def get_config(self) -> dict[str, Any]:
        """The graph as JSON: the inputs, every layer's config, each call (which layer, what it
        read: an input or a node's output, and its keyword arguments) and the outputs."""
        index = {id(layer): k for k, layer in enumerate(self.layers_)}
        refs = {t.id: ["input", k] for k, t in enumerate(self.inputs)}

        def encode(v):
            if isinstance(v, (list, tuple)):
                return [encode(w) for w in v]
            if hasattr(v, "node"):
                return {"ref": refs[v.id]}
            if v is None or isinstance(v, (bool, int, float, str)):
                return v
            raise ValueError(f"save: a layer call's argument of type {type(v).__name__} cannot be saved")

        nodes = []
        for n, node in enumerate(self.nodes_):
            nodes.append({"layer": index[id(node.layer)], "inputs": encode(node.inputs),
                          "kwargs": {k: encode(v) for k, v in node.kwargs.items()}})  # fmt: skip
            for j, o in enumerate(node.outputs):
                refs[o.id] = ["node", n, j]
        return {
            "class_name": "Model",
            "name": self.name,
            "inputs": [{"shape": list(t.shape), "name": t.name} for t in self.inputs],
            "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()} for layer in self.layers_],
            "nodes": nodes,
            "outputs": [refs[t.id] for t in self.outputs],
            "single_input": self.single_input,
            "single_output": self.single_output,
        }

    @classmethod
    def from_config(cls, cfg: dict) -> Model:
        """Rebuild the graph of :meth:`get_config` by calling fresh layers on fresh Inputs."""
        from .functional import Input

        inputs = [Input(tuple(spec["shape"]), name=spec["name"]) for spec in cfg["inputs"]]
        layers = [layer_from_config(spec) for spec in cfg["layers"]]
        made: dict[tuple, Any] = {("input", k): t for k, t in enumerate(inputs)}

        def decode(v):
            if isinstance(v, list):
                return [decode(w) for w in v]
            if isinstance(v, dict) and "ref" in v:
                return made[tuple(v["ref"])]
            return v

        for n, node in enumerate(cfg["nodes"]):
            out = layers[node["layer"]](decode(node["inputs"]), **{k: decode(v) for k, v in node["kwargs"].items()})
            for j, o in enumerate(out if isinstance(out, list) else [out]):
                made[("node", n, j)] = o
        outputs = [made[tuple(r)] for r in cfg["outputs"]]
        return cls(inputs[0] if cfg["single_input"] else inputs, outputs[0] if cfg["single_output"] else outputs,
                   name=cfg["name"])  # fmt: skip

    def _compile_record(self) -> dict | None:
        rec = Sequential._compile_record(self)
        if rec is not None and not self.single_output:
            rec = {"optimizer": rec["optimizer"], "loss": list(self.output_losses), "loss_weights": self.loss_weights,
                   "metrics": [list(m) for m in self.output_metrics]}  # fmt: skip
        return rec


def load_model(path: str | os.PathLike) -> Sequential:
    """Rebuild a model saved with :meth:`Sequential.save` (safetensors + JSON only)."""
    path = Path(path)
    refuse_pickle(path)
    meta_file = path / "model.json"
    if not meta_file.is_file():
        raise CheckpointError(f"{path}: expected a folder with model.json and model.safetensors, found no model.json")
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    if meta.get("format") != _FORMAT:
        raise CheckpointError(f"{meta_file}: expected format {_FORMAT!r}, got {meta.get('format')!r}")
    cfg = meta["config"]
    if cfg.get("class_name") == "Model":  # a functional graph
        model = Model.from_config(cfg)
        model.load_state_dict(load_verified(path / "model.safetensors", meta.get("sha256"), meta_file))
        if meta.get("compile"):
            model.compile(**meta["compile"])
        return model
    layers = [layer_from_config(spec) for spec in cfg["layers"]]
    model = Sequential(name=cfg["name"])
    for layer in layers:
        model.layers_.append(layer)
    if cfg["input_shape"] is not None:
        model.build(tuple(cfg["input_shape"]))
    model.load_state_dict(load_verified(path / "model.safetensors", meta.get("sha256"), meta_file))
    if meta.get("compile"):
        model.compile(**meta["compile"])
    return model


def _rows(x, sl: slice):
    return {k: v[sl] for k, v in x.items()} if isinstance(x, dict) else x[sl]


def _to_tensor(a, name: str) -> torch.Tensor:
    if a is None:
        raise ValueError(f"{name}: expected an array, got None")
    if isinstance(a, torch.Tensor):
        t = a
    else:
        arr = np.asarray(a)
        if arr.dtype.kind in "US":
            raise ValueError(f"{name}: expected numbers, got text (dtype {arr.dtype}); turn it into token ids "
                             "first, outside the model, e.g. with layers.TextVectorization")  # fmt: skip
        if arr.dtype.kind == "O":
            raise ValueError(f"{name}: expected a rectangular array of numbers, got Python objects (sequences of "
                             "different lengths? pad them with utils.pad_sequences)")  # fmt: skip
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)  # Keras' default float type
        t = torch.as_tensor(arr)
    if t.dtype == torch.float64:
        t = t.float()
    return t


__all__ = ["InputLayer", "Model", "Sequential", "load_model"]

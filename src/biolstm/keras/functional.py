"""Keras' functional API: symbolic ``Input`` tensors, layers called on them, ``Model(inputs, outputs)``.

Calling a biolstm.keras layer on a :class:`KerasTensor` builds the layer from the symbolic
shape (no batch axis) and records a :class:`Node` (the layer, what it read, its keyword
arguments such as ``initial_state``); the result is a new KerasTensor (a list of them for a
layer that returns several, e.g. ``LSTM(return_state=True)``). ``Model(inputs, outputs)`` walks
the nodes back from the outputs, keeps them in the order they were made (a topological
order), and runs them on real tensors: a layer called twice is one module, so its weights are
shared, and a sub-model such as ``Model(encoder_inputs, encoder_states)`` shares the weights of
the model it was cut from. Masks (``Masking``, ``Embedding(mask_zero=True)``) travel along the
graph as in Sequential.
"""

from __future__ import annotations

import inspect
import itertools
from typing import Any

import torch
from torch import nn

_ids = itertools.count()


class KerasTensor:
    """A symbolic tensor: its shape without the batch axis, and the node that makes it."""

    def __init__(self, shape: tuple, node: Node | None = None, index: int = 0, name: str | None = None) -> None:
        self.shape = tuple(shape)
        self.node, self.index, self.name = node, index, name
        self.id = next(_ids)

    def __repr__(self) -> str:
        return f"<KerasTensor shape={(None, *self.shape)}{f' name={self.name!r}' if self.name else ''}>"


class Node:
    """One call of a layer on symbolic inputs: ``layer(inputs, **kwargs)`` -> ``outputs``."""

    def __init__(self, layer, inputs, kwargs: dict, outputs: list[KerasTensor]) -> None:
        self.layer, self.inputs, self.kwargs, self.outputs = layer, inputs, kwargs, outputs
        self.id = next(_ids)

    def parents(self) -> list[KerasTensor]:
        return [t for t in _flat([self.inputs, *self.kwargs.values()]) if isinstance(t, KerasTensor)]


def Input(shape, name: str | None = None, dtype: Any = None, batch_size: int | None = None) -> KerasTensor:
    """A symbolic model input of ``shape`` (without the batch axis; None for a variable length)."""
    if isinstance(shape, int):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)) or not all(s is None or (isinstance(s, int) and s > 0) for s in shape):
        raise ValueError(f"Input: shape: expected a tuple of positive ints or None (no batch axis), got {shape!r}")
    return KerasTensor(tuple(shape), None, 0, name)


def _flat(items) -> list:
    out = []
    for v in items:
        if isinstance(v, (list, tuple)):
            out.extend(_flat(v))
        else:
            out.append(v)
    return out


def is_symbolic(args, kwargs) -> bool:
    return any(isinstance(v, KerasTensor) for v in _flat([*args, *kwargs.values()]))


def _shape(x):
    return [t.shape for t in x] if isinstance(x, (list, tuple)) else x.shape


def symbolic_call(layer, x, mask=None, **kwargs):
    """``layer(x)`` on KerasTensors: build the layer from the shapes, record the call."""
    if mask is not None:
        raise ValueError(f"{type(layer).__name__}: mask: a functional model's masks come from its layers "
                         "(Masking, Embedding(mask_zero=True)), not from an argument")  # fmt: skip
    out = layer.ensure_built(_shape(x))
    options = {k: v for k, v in kwargs.items() if not is_symbolic((v,), {})}  # e.g. return_attention_scores
    accepted = inspect.signature(layer.compute_output_shape).parameters
    if any(k in accepted for k in options):  # call options that change what the layer returns
        out = layer.compute_output_shape(_shape(x), **{k: v for k, v in options.items() if k in accepted})
    shapes = out if isinstance(out, list) else [out]
    outputs = [KerasTensor(s, None, k) for k, s in enumerate(shapes)]
    node = Node(layer, x, kwargs, outputs)
    for t in outputs:
        t.node = node
    return outputs if isinstance(out, list) else outputs[0]


def _nodes(outputs: list[KerasTensor], inputs: list[KerasTensor]) -> list[Node]:
    """The nodes between ``inputs`` and ``outputs`` in the order they were made; an output that
    depends on a symbolic tensor outside ``inputs`` is an error naming it."""
    seen: dict[int, Node] = {}
    stack = list(outputs)
    known = {t.id for t in inputs}
    while stack:
        t = stack.pop()
        if t.id in known:
            continue
        if t.node is None:
            raise ValueError(f"Model: outputs depend on {t!r}, which is not among the model's inputs")
        if t.node.id not in seen:
            seen[t.node.id] = t.node
            stack.extend(t.node.parents())
    return sorted(seen.values(), key=lambda n: n.id)


def keras_layer_order(inputs: list[KerasTensor], outputs: list[KerasTensor]) -> list:
    """The layers in Keras' order (``model.layers``, and so ``get_weights()``): by depth from the
    outputs, deepest first (a node's depth is the longest path to an output, a layer's the
    largest of its nodes'), ties in the order a depth-first walk from the outputs first meets
    them, as Keras 3's ``map_graph`` does; keyword inputs such as ``initial_state`` count."""
    finished: set[int] = set()
    post: list[Node] = []
    first: dict[int, int] = {}

    def visit(t: KerasTensor) -> None:
        node = t.node
        if node is None or node.id in finished:
            return
        first.setdefault(id(node.layer), len(first))
        for p in node.parents():
            visit(p)
        finished.add(node.id)
        post.append(node)

    for o in outputs:
        visit(o)
    node_depth: dict[int, int] = {}
    layer_depth: dict[int, int] = {}
    for node in reversed(post):  # every consumer before what it reads
        d = max(node_depth.setdefault(node.id, 0), layer_depth.get(id(node.layer), 0))
        layer_depth[id(node.layer)] = node_depth[node.id] = d
        for p in node.parents():
            if p.node is not None:
                node_depth[p.node.id] = max(d + 1, node_depth.get(p.node.id, 0))
    layers = {id(n.layer): n.layer for n in post}
    return sorted(layers.values(), key=lambda layer: (-layer_depth[id(layer)], first[id(layer)]))


def _has_tensors(kwargs: dict) -> bool:
    def any_tensor(v) -> bool:
        return any(any_tensor(w) for w in v) if isinstance(v, (list, tuple)) else isinstance(v, KerasTensor)

    return any(any_tensor(v) for v in kwargs.values())


class GraphMixin:
    """Runs a functional graph; used by :class:`biolstm.keras.models.Model`."""

    def _init_graph(self, inputs, outputs) -> None:
        self.single_input = isinstance(inputs, KerasTensor)
        self.single_output = isinstance(outputs, KerasTensor)
        self.inputs = [inputs] if self.single_input else list(inputs)
        self.outputs = [outputs] if self.single_output else list(outputs)
        for t in [*self.inputs, *self.outputs]:
            if not isinstance(t, KerasTensor):
                raise TypeError(f"Model: expected KerasTensors (from Input and layer calls), got {type(t).__name__}")
        for k, t in enumerate(self.inputs):
            if t.node is not None:
                raise ValueError(f"Model: input {k} is the output of a layer, not an Input")
        self.input_names = [t.name or f"input_{k + 1}" for k, t in enumerate(self.inputs)]
        if len(set(self.input_names)) != len(self.input_names):
            raise ValueError(f"Model: input names must differ, got {self.input_names}")
        self.nodes_ = _nodes(self.outputs, self.inputs)
        # a layer called twice is one module (shared weights); Keras' order, so get_weights() matches
        self.layers_ = nn.ModuleList(keras_layer_order(self.inputs, self.outputs))

    def run_graph(self, args: tuple, kwargs: dict, with_masks: bool = False):
        """The outputs for these inputs (with ``with_masks``: the list of outputs and the list of
        their masks, None where an output has none)."""
        if kwargs and args:
            raise TypeError("Model: pass the inputs either by position or by name, not both")
        if kwargs:
            unknown = sorted(set(kwargs) - set(self.input_names))
            if unknown:
                raise TypeError(f"Model: unknown input {unknown[0]!r}; expected {self.input_names}")
            args = tuple(kwargs[n] for n in self.input_names)
        if len(args) == 1 and isinstance(args[0], (list, tuple)) and len(self.inputs) > 1:
            args = tuple(args[0])
        if len(args) != len(self.inputs):
            raise ValueError(f"Model: expected {len(self.inputs)} input(s) {self.input_names}, got {len(args)}")
        values: dict[int, tuple[torch.Tensor, torch.Tensor | None]] = {
            t.id: (torch.as_tensor(a), None) for t, a in zip(self.inputs, args)
        }

        def value(v):
            if isinstance(v, (list, tuple)):
                return [value(w) for w in v]
            return values[v.id][0] if isinstance(v, KerasTensor) else v

        def mask(v):
            if isinstance(v, (list, tuple)):
                return [mask(w) for w in v]
            return values[v.id][1] if isinstance(v, KerasTensor) else None

        for node in self.nodes_:
            x, m = value(node.inputs), mask(node.inputs)
            if isinstance(m, list) and all(w is None for w in m):
                m = None
            kw = {k: value(v) for k, v in node.kwargs.items()}
            # Keras 3 passes the input's mask only to a call with one tensor argument: a layer
            # also given tensors by keyword (LSTM(...)(x, initial_state=[h, c])) runs unmasked,
            # while its output keeps the input's mask
            out = node.layer(x, None if _has_tensors(node.kwargs) else m, **kw)
            out_mask = node.layer.compute_mask(x, m)
            outs = out if isinstance(out, (list, tuple)) else [out]
            for k, (t, o) in enumerate(zip(node.outputs, outs)):
                values[t.id] = (o, out_mask if k == 0 else None)  # states carry no mask
        result = [values[t.id][0] for t in self.outputs]
        if with_masks:
            return result, [values[t.id][1] for t in self.outputs]
        return result[0] if self.single_output else tuple(result)

"""Read the weights of an exported Piper VITS ONNX graph as a flat, module-named state dict.

The exporter (torch 2.0 -> opset 15) keeps most parameter names (``dec.ups.0.weight``) but:

* folds weight-normed convolutions into fresh tensors called ``onnx::Conv_8168`` and friends,
* calls the text embedding table ``sid`` (it is consumed by ``/enc_p/emb/Gather``),
* constant-folds ``exp(-logs)`` of the duration predictor's first affine flow into
  ``/dp/flows.0/Exp_output_0`` (newer torch versions fold only ``-logs``, into an ``onnx::Exp_*``
  tensor read by ``/dp/flows.0/Exp``: that one is called ``dp.flows.0.neg_logs``).

Names are resolved through the graph: a tensor read by the node ``/flow/flows.6/enc/in_layers.0/Conv``
at input slot 1 is that module's ``weight``, at slot 2 its ``bias``.  The node names carry the
original module path, so this needs no knowledge of the graph's position or order.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    import onnx

_CONV_OPS = {"Conv", "ConvTranspose"}
_SLOT_SUFFIX = {1: "weight", 2: "bias"}


@dataclass(frozen=True)
class ConvSpec:
    """Hyper-parameters of one Conv/ConvTranspose node, as written in the graph."""

    op: str
    kernel: int
    stride: int
    dilation: int
    pads: tuple[int, int]
    groups: int


def _load_model(onnx_path: str | Path):
    import onnx  # local: serving only needs it at load time

    return onnx.load(str(onnx_path))


def _module_path(node_name: str) -> str | None:
    """'/flow/flows.6/enc/in_layers.0/Conv' -> 'flow.flows.6.enc.in_layers.0'."""
    parts = [p for p in node_name.split("/") if p]
    if len(parts) < 2:
        return None
    return ".".join(parts[:-1])


def _consumers(graph: onnx.GraphProto) -> dict[str, list[tuple[onnx.NodeProto, int]]]:
    users: dict[str, list[tuple[onnx.NodeProto, int]]] = defaultdict(list)
    for node in graph.node:
        for slot, name in enumerate(node.input):
            users[name].append((node, slot))
    return users


def _name_from_graph(users: list[tuple[onnx.NodeProto, int]]) -> str | None:
    """Module-style name implied by the nodes that read a tensor, if they agree on one."""
    names = set()
    for node, slot in users:
        module = _module_path(node.name)
        if module is None:
            continue
        if node.op_type in _CONV_OPS and slot in _SLOT_SUFFIX:
            names.add(f"{module}.{_SLOT_SUFFIX[slot]}")
        elif node.op_type == "Gather" and slot == 0 and module.endswith(".emb"):
            names.add(f"{module}.weight")  # embedding lookup table
        elif node.op_type == "Exp" and slot == 0 and module.endswith(".flows.0"):
            names.add(f"{module}.neg_logs")  # the affine flow's folded -logs
    return names.pop() if len(names) == 1 else None


_FOLDED_EXP = re.compile(r"^/(?P<module>[\w./]+)/Exp_output_0$")
_PARAM_LIKE = re.compile(r"^[A-Za-z_][\w]*(\.[\w]+)+$")


def _clean_name(raw: str, users: list[tuple[onnx.NodeProto, int]]) -> str | None:
    from_graph = _name_from_graph(users)
    if from_graph is not None:
        return from_graph
    folded = _FOLDED_EXP.match(raw)
    if folded:
        # ElementwiseAffine.reverse computes (x - m) * exp(-logs); the export folded exp(-logs).
        return folded.group("module").replace("/", ".") + ".exp_neg_logs"
    if _PARAM_LIKE.match(raw):
        return raw
    return None  # exporter constants (shapes, axes, eps ...): not weights


def read_onnx_weights(onnx_path: str | Path, model=None) -> dict[str, torch.Tensor]:
    """All learned tensors of the graph, keyed by module-style names (float32, CPU)."""
    from onnx import numpy_helper

    model = model if model is not None else _load_model(onnx_path)
    users = _consumers(model.graph)
    weights: dict[str, torch.Tensor] = {}
    for init in model.graph.initializer:
        name = _clean_name(init.name, users.get(init.name, []))
        if name is None:
            continue
        array = numpy_helper.to_array(init)
        if array.dtype != np.float32:
            continue
        if name in weights:
            raise ValueError(f"two initializers resolve to {name!r}")
        weights[name] = torch.from_numpy(array.copy())
    return weights


def read_conv_specs(onnx_path: str | Path, model=None) -> dict[str, ConvSpec]:
    """Per conv module (e.g. 'dec.resblocks.2.convs.1'): kernel, stride, dilation, pads, groups."""
    from onnx import helper

    model = model if model is not None else _load_model(onnx_path)
    specs: dict[str, ConvSpec] = {}
    for node in model.graph.node:
        if node.op_type not in _CONV_OPS:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        module = _module_path(node.name)
        if module is None:
            continue
        specs[module] = ConvSpec(
            op=node.op_type,
            kernel=int(attrs["kernel_shape"][0]),
            stride=int(attrs.get("strides", [1])[0]),
            dilation=int(attrs.get("dilations", [1])[0]),
            pads=(int(attrs.get("pads", [0, 0])[0]), int(attrs.get("pads", [0, 0])[1])),
            groups=int(attrs.get("group", 1)),
        )
    return specs


def read_onnx(onnx_path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, ConvSpec]]:
    """Weights and conv specs with a single parse of the file."""
    model = _load_model(onnx_path)
    return read_onnx_weights(onnx_path, model), read_conv_specs(onnx_path, model)


class WeightBag:
    """Hands out named tensors under a prefix and remembers which were used.

    Modules copy their parameters out of it (``bag.into(self.conv.weight, "conv_q.weight")``);
    ``unused()`` at the end catches any tensor a module forgot to load.
    """

    def __init__(
        self,
        tensors: dict[str, torch.Tensor],
        specs: dict[str, ConvSpec] | None = None,
        prefix: str = "",
        _used: set | None = None,
    ):
        self._tensors = tensors
        self._specs = specs or {}
        self._prefix = prefix
        self._used = _used if _used is not None else set()

    def scope(self, name: str) -> WeightBag:
        return WeightBag(self._tensors, self._specs, f"{self._prefix}{name}.", self._used)

    def take(self, name: str) -> torch.Tensor:
        key = self._prefix + name
        if key not in self._tensors:
            raise KeyError(f"missing weight {key!r}")
        self._used.add(key)
        return self._tensors[key]

    def into(self, dst: torch.Tensor, name: str) -> None:
        src = self.take(name)
        if tuple(src.shape) != tuple(dst.shape):
            raise ValueError(f"{self._prefix}{name}: shape {tuple(src.shape)} != {tuple(dst.shape)}")
        with torch.no_grad():
            dst.copy_(src)

    def weights(self, module: torch.nn.Conv1d | torch.nn.ConvTranspose1d | torch.nn.Linear, name: str) -> None:
        """Load ``name.weight`` (+ ``name.bias``, if the module has one)."""
        self.into(module.weight, f"{name}.weight")
        if module.bias is not None:
            self.into(module.bias, f"{name}.bias")

    def conv(self, conv: torch.nn.Conv1d | torch.nn.ConvTranspose1d, name: str) -> None:
        """Load ``name.weight`` (+ ``name.bias``) into a Conv1d/ConvTranspose1d and check that its
        kernel, stride, dilation, padding and groups agree with the graph's node, when known."""
        self.weights(conv, name)
        spec = self._specs.get(self._prefix + name)
        if spec is None:
            return
        transposed = isinstance(conv, torch.nn.ConvTranspose1d)
        mine = ConvSpec(
            op="ConvTranspose" if transposed else "Conv",
            kernel=conv.kernel_size[0],
            stride=conv.stride[0],
            dilation=conv.dilation[0],
            pads=(int(conv.padding[0]), int(conv.padding[0])),  # (torch types padding str | tuple)
            groups=conv.groups,
        )
        if mine != spec:
            raise ValueError(f"{self._prefix}{name}: module {mine} but graph has {spec}")

    def has(self, name: str) -> bool:
        return (self._prefix + name) in self._tensors

    def unused(self) -> list[str]:
        return sorted(k for k in self._tensors if k not in self._used)

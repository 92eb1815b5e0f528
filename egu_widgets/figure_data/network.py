"""The network diagram's data: the engine's two-stream model traced through hooks and autograd.

:func:`network_graph` records which layers each stream of an EGU-Net model runs, in order, which
of them both streams share and the activations between them, read from the model itself so that
the diagram drawn by :func:`egu_widgets.plotting.network_figure` cannot drift from the code.
torch is imported only when a model is traced.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["NetBox", "NetGraph", "network_graph", "network_rows"]


@dataclass
class NetBox:
    """One layer of the traced network: modules called (or parameters used) together."""

    key: str  # the first module's qualified name, e.g. "encoder.fc1"
    modules: list[str]
    lines: list[str]  # label lines: layer, what follows it, notes, modules and parameter count
    streams: set = field(default_factory=set)  # {"endmember", "unmixing"}
    n_params: int = 0
    title: str = ""
    parts: list = field(default_factory=list)
    ops: dict = field(default_factory=dict)  # module -> activations after it (first stream)
    notes: list = field(default_factory=list)

    @property
    def shared(self) -> bool:
        return len(self.streams) == 2


@dataclass
class NetGraph:
    """The traced network: its boxes, each stream's path through them, inputs, outputs and sizes."""

    variant: str
    boxes: dict[str, NetBox]
    order: dict[str, list[str]]  # stream -> box keys, input to output
    inputs: dict[str, str]
    outputs: dict[str, str]
    n_params: int
    n_shared_params: int


_OP_NAMES = {
    "TanhBackward0": "tanh",
    "SigmoidBackward0": "sigmoid",
    "ReluBackward0": "ReLU",
    "SoftmaxBackward0": "softmax",
    "AvgPool2DBackward0": "avg-pool 2×2",
}


def _describe_module(module) -> tuple[str, str]:
    """(kind, text) of a leaf module, read from its attributes."""
    from torch import nn

    name = type(module).__name__
    if isinstance(module, nn.Linear):
        return "layer", f"linear {module.in_features}→{module.out_features}"
    if isinstance(module, nn.ConvTranspose2d):
        k = module.kernel_size[0]
        return "layer", f"transposed conv {k}×{k}/{module.stride[0]}, {module.in_channels}→{module.out_channels}"
    if isinstance(module, nn.Conv2d):
        k = module.kernel_size[0]
        return "layer", f"conv {k}×{k}, {module.in_channels}→{module.out_channels}"
    if name == "Norm" or isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return "post", "batch norm"
    if hasattr(module, "p") and "dropout" in name.lower():
        return "post", f"dropout {module.p:g}"
    return "layer", name


def _graph_nodes(roots: Iterable) -> tuple[set, dict]:
    """All autograd nodes reachable from ``roots`` and, for each, the nodes consuming it."""
    seen: set = set()
    consumers: dict = {}
    stack = [r for r in roots if r is not None]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        for child, _ in node.next_functions:
            if child is not None:
                consumers.setdefault(child, []).append(node)
                stack.append(child)
    return seen, consumers


def _depths(roots: Sequence, nodes: set) -> dict:
    """Longest distance of every node from the outputs (inputs are deepest): a topological rank."""
    depth = {r: 0 for r in roots if r is not None}
    changed = True
    while changed:  # the graphs have a few hundred nodes; relaxation is quick
        changed = False
        for node in list(depth):
            for child, _ in node.next_functions:
                if child is not None and depth.get(child, -1) < depth[node] + 1:
                    depth[child] = depth[node] + 1
                    changed = True
    return depth


def network_graph(model, *, n_bundles: int = 16, image_side: int = 16) -> NetGraph:
    """Trace the engine's two-stream model: which layers each stream runs, in order, and which are shared.

    The endmember stream is ``model.bundle_logits`` on a batch of random spectra, the unmixing
    stream ``model(...)`` (pixels for ``pw``/``ae``, a random image for ``ss``). Forward hooks on the
    leaf modules record which modules each stream calls; the autograd graph of each stream adds
    parameters used without calling their module (``ss`` uses the encoder's third weight as a 1×1
    convolution), the order from input to output, and the activations between layers. Works on a
    copy; the model is not changed.
    """
    import copy

    import torch

    model = copy.deepcopy(model)
    model.train()  # batch statistics and live dropout, as in training
    gen = torch.Generator().manual_seed(0)
    if hasattr(model, "set_generator"):
        model.set_generator(gen)
    variant = str(getattr(model, "variant", "pw"))
    n_bands = int(model.n_bands)
    leaves = {name: m for name, m in model.named_modules() if name and not list(m.children())}
    param_owner = {}
    for name, m in leaves.items():
        for _pname, prm in m.named_parameters(recurse=False):
            param_owner[prm] = name

    calls: list[tuple[str, str, Any]] = []  # (stream, module, output grad node)
    current = {"stream": ""}
    handles = [
        m.register_forward_hook(
            lambda mod, inp, out, _n=name: calls.append((current["stream"], _n, getattr(out, "grad_fn", None)))
        )
        for name, m in leaves.items()
    ]
    streams: dict[str, tuple] = {}
    try:
        current["stream"] = "endmember"
        bundles = torch.rand(n_bundles, n_bands, generator=gen)
        logits = model.bundle_logits(bundles)
        streams["endmember"] = (torch.softmax(logits, dim=1),)
        current["stream"] = "unmixing"
        if variant == "ss":
            image = torch.rand(1, n_bands, image_side, image_side, generator=gen)
            streams["unmixing"] = tuple(model(image))
            inputs = {"endmember": f"bundle spectra (K × {n_bands})", "unmixing": f"image (1 × {n_bands} × H × W)"}
        else:
            pixels = torch.rand(n_bundles, n_bands, generator=gen)
            streams["unmixing"] = tuple(model(pixels))
            inputs = {"endmember": f"bundle spectra (K × {n_bands})", "unmixing": f"pixels (N × {n_bands})"}
    finally:
        for h in handles:
            h.remove()

    boxes: dict[str, NetBox] = {}
    order: dict[str, list[str]] = {}
    owner_box: dict[str, str] = {}  # module -> key of the box that shows it
    for stream, outputs in streams.items():
        roots = [t.grad_fn for t in outputs]
        nodes, consumers = _graph_nodes(roots)
        depth = _depths(roots, nodes)
        stream_calls = [(name, node) for s, name, node in calls if s == stream]
        called = {name for name, _ in stream_calls}
        module_nodes = {node: name for name, node in stream_calls if node is not None}
        items: list[tuple[int, str, Any]] = []  # (depth, module, output node)
        for name, node in stream_calls:
            items.append((depth.get(node, -1), name, node))
        # Parameters this stream uses without calling their module: find the op that consumes them.
        for node in nodes:
            if type(node).__name__ != "AccumulateGrad":
                continue
            owner = param_owner.get(node.variable)
            if owner is None or owner in called:
                continue
            user = node
            while True:  # skip views (unsqueeze, alias...) of the parameter
                nxt = consumers.get(user, [])
                if not nxt:
                    break
                user = nxt[0]
                if type(user).__name__ not in (
                    "UnsqueezeBackward0",
                    "AliasBackward0",
                    "ViewBackward0",
                    "TBackward0",
                    "SliceBackward0",
                    "SelectBackward0",
                    "ExpandBackward0",
                ):
                    break
            items.append((depth.get(user, -1), owner, user))
            module_nodes[user] = owner
            called.add(owner)
        items.sort(key=lambda t: -t[0])  # deepest (nearest the input) first
        keys: list[str] = []
        names_called = {n for n, _ in stream_calls}
        for _, name, node in items:
            kind, text = _describe_module(leaves[name])
            functional = name not in names_called
            # activations applied to this module's output before the next module
            ops = []
            cur = node
            for _ in range(6):
                nxt = [c for c in consumers.get(cur, []) if c not in module_nodes]
                if len(nxt) != 1:
                    break
                cur = nxt[0]
                if type(cur).__name__ in _OP_NAMES:
                    ops.append(_OP_NAMES[type(cur).__name__])
            if name in owner_box:  # already drawn for the other stream: the same module, shared
                box = boxes[owner_box[name]]
                box.streams.add(stream)
                if functional:
                    box.notes.append(f"{stream} stream: the same weight as a 1×1 convolution")
                first_ops = box.ops.get(name, [])
                if ops != first_ops:
                    box.notes.append(
                        f"{stream} stream: " + " · ".join(["batch norm" if kind == "post" else text] + ops)
                    )
                if box.key not in keys:
                    keys.append(box.key)
                continue
            if kind == "post" and keys:  # batch norm / dropout join the layer they follow
                box = boxes[keys[-1]]
                box.modules.append(name)
                box.parts.append(text)
                box.ops[name] = ops
                box.parts.extend(ops)
                box.streams.add(stream)
                owner_box[name] = box.key
                continue
            box = NetBox(key=name, modules=[name], lines=[], streams={stream})
            box.title = text
            box.ops[name] = ops
            box.parts.extend(ops)
            boxes[name] = box
            owner_box[name] = name
            keys.append(name)
        order[stream] = keys
    for box in boxes.values():
        box.n_params = int(sum(prm.numel() for n in box.modules for prm in leaves[n].parameters(recurse=False)))
        box.lines = (
            [box.title, " · ".join(box.parts)]
            + box.notes
            + [", ".join(box.modules) + f"  ({box.n_params:,} parameters)"]
        )
    n_params = int(sum(prm.numel() for prm in model.parameters()))
    n_shared = int(sum(b.n_params for b in boxes.values() if b.shared))
    outputs = {
        "endmember": "abundances of the bundles → cross-entropy vs pseudo-abundances",
        "unmixing": "reconstruction → mean squared error vs input",
    }
    return NetGraph(variant, boxes, order, inputs, outputs, n_params, n_shared)


def network_rows(order: Mapping[str, list[str]], boxes: Mapping[str, NetBox]) -> dict[str, int]:
    """Row of every box: each stream's boxes descend, shared boxes sit on one row for both."""
    left, right = order.get("endmember", []), order.get("unmixing", [])
    rows: dict[str, int] = {}
    i = j = row = 0
    while i < len(left) or j < len(right):
        a = left[i] if i < len(left) else None
        b = right[j] if j < len(right) else None
        if a is not None and a == b:
            rows[a] = row
            i, j = i + 1, j + 1
        else:
            moved = False
            if a is not None and not boxes[a].shared:
                rows[a] = row
                i += 1
                moved = True
            if b is not None and not boxes[b].shared:
                rows[b] = row
                j += 1
                moved = True
            if not moved:  # both next boxes are shared but differ: take the left one first
                rows.setdefault(a, row)
                i += 1
                if b == a:
                    j += 1
        row += 1
    return rows

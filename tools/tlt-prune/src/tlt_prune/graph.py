"""Channel-dependency analysis of a Keras functional model.

Every tensor gets a :class:`ChannelMap` (or ``None`` when none of its channels can change, e.g. the model input
or anything computed only from it): for each position along its channel axis, the *group* of filters it comes
from and the filter's index in that group (``-1``: a channel that is never pruned). Convolutions and Dense
layers create groups; everything else moves, repeats, concatenates or ties them:

* pass-through layers (activations, Dropout, BatchNormalization, pooling, padding, cropping, up-sampling) keep
  the map; global pooling, Flatten, Reshape and Permute move it (Flatten and Reshape are probed with a tensor of
  channel indices, so the Dense rows after a Flatten get the right repeated mask for either data format);
* Concatenate on the channel axis concatenates the maps;
* element-wise ops (Add, Subtract, Multiply, Average, Maximum, Minimum) and depthwise convolutions *tie*
  groups: tied groups are merged (union-find) and keep the same filters;
* a group reaching a model output, an excluded layer or a layer that cannot have fewer input channels
  (LayerNormalization, a softmax over channels, a grouped convolution, a custom layer whose class sets
  ``pruned_channels_fixed = True``) is *fixed*: it keeps all its filters;
* any other layer fed by prunable channels is unsupported; :meth:`GraphAnalysis.check_supported` names it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from libtlt.errors import UnsupportedError

# Layer kinds (``LayerInfo.kind``).
PRODUCER = "producer"        # Conv*, Conv*Transpose, SeparableConv*, Dense: own output filters
DEPTHWISE = "depthwise"      # DepthwiseConv*: output channels follow the input's
CHANNELWISE = "channelwise"  # BatchNormalization, PReLU: per-channel weights, same channels out
PASSTHROUGH = "passthrough"  # no weights that depend on channels
BARRIER = "barrier"          # its input channels cannot change (groups feeding it are fixed)
OPAQUE = "opaque"            # a layer this tool does not know
#: Class attribute by which a custom layer says its output's last axis carries its input k's channels unchanged.
PRUNED_CHANNELS_FOLLOW = "pruned_channels_follow_input"
#: Class attribute (true) by which a custom layer says its inputs' channels cannot change (a barrier: MaskRCNN's
#: proposal and detection layers, whose inputs' channels are anchors and classes).
PRUNED_CHANNELS_FIXED = "pruned_channels_fixed"


@dataclass(eq=False)
class ChannelMap:
    """Where each channel along ``axis`` (batch axis included in the count) comes from."""

    axis: int
    gid: np.ndarray
    idx: np.ndarray

    def __len__(self) -> int:
        return int(self.gid.size)

    def groups(self) -> set[int]:
        return {int(g) for g in np.unique(self.gid) if g >= 0}

    def take(self, positions: np.ndarray, axis: int) -> ChannelMap:
        return ChannelMap(axis, self.gid[positions], self.idx[positions])


class Groups:
    """Union-find over filter groups; a root carries the ``fixed`` flag and the reasons for it."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.size: list[int] = []
        self.owner: list[str] = []
        self.fixed: dict[int, list[str]] = {}

    def new(self, size: int, owner: str) -> int:
        self.parent.append(len(self.parent))
        self.size.append(int(size))
        self.owner.append(owner)
        return len(self.parent) - 1

    def find(self, gid: int) -> int:
        root = gid
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[gid] != root:
            self.parent[gid], gid = root, self.parent[gid]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        self.parent[rb] = ra
        if rb in self.fixed:
            self.fixed.setdefault(ra, []).extend(self.fixed.pop(rb))

    def fix(self, gid: int, reason: str) -> None:
        self.fixed.setdefault(self.find(gid), []).append(reason)

    def is_fixed(self, gid: int) -> bool:
        return self.find(gid) in self.fixed

    def roots(self) -> list[int]:
        return sorted({self.find(g) for g in range(len(self.parent))})

    def members(self, root: int) -> list[int]:
        return [g for g in range(len(self.parent)) if self.find(g) == root]


@dataclass
class LayerInfo:
    """What the analysis learnt about one layer (merged over all its calls)."""

    layer: Any
    kind: str
    group: int | None = None           # PRODUCER: the group of its output filters
    in_map: ChannelMap | None = None   # weighted layers: the channels of their input (None: unchanged)
    out_map: ChannelMap | None = None  # the channels of its (first call's) output
    reason: str = ""                   # BARRIER/OPAQUE: why

    @property
    def name(self) -> str:
        return str(self.layer.name)

    @property
    def class_name(self) -> str:
        return type(self.layer).__name__


@dataclass
class GraphAnalysis:
    groups: Groups
    layers: dict[str, LayerInfo]
    output_maps: list[ChannelMap | None]
    opaque_inputs: dict[str, set[int]] = field(default_factory=dict)
    output_groups: dict[str, set[int]] = field(default_factory=dict)

    def fix_layer_outputs(self, name: str, reason: str) -> None:
        """Keep every filter of the channels ``name`` outputs (an excluded layer)."""
        for gid in self.output_groups.get(name, set()):
            self.groups.fix(gid, reason)

    def check_supported(self) -> None:
        """Raise ``UnsupportedError`` naming the first unknown layer that prunable channels reach."""
        for name, gids in self.opaque_inputs.items():
            open_groups = sorted({self.groups.find(g) for g in gids if not self.groups.is_fixed(g)})
            if open_groups:
                info = self.layers[name]
                feeders = sorted({self.groups.owner[m] for r in open_groups for m in self.groups.members(r)})
                raise UnsupportedError(
                    f"layer '{name}' ({info.class_name}) is not supported by tlt-prune: it cannot follow a change "
                    f"in its input channels; exclude the layers feeding it with -el {' '.join(feeders)}")


@functools.cache
def _layer_types() -> dict[str, tuple[type, ...]]:
    import keras

    L = keras.layers

    def pick(*names: str) -> tuple[type, ...]:
        return tuple(getattr(L, n) for n in names if hasattr(L, n))

    dims = ("1D", "2D", "3D")
    return {
        "conv": pick(*(f"Conv{d}" for d in dims)),
        "transpose": pick(*(f"Conv{d}Transpose" for d in dims)),
        "separable": pick("SeparableConv1D", "SeparableConv2D"),
        "depthwise": pick("DepthwiseConv1D", "DepthwiseConv2D"),
        "dense": pick("Dense"),
        "batchnorm": pick("BatchNormalization"),
        "prelu": pick("PReLU"),
        "elementwise": pick("Activation", "ReLU", "LeakyReLU", "ELU", "Dropout", "GaussianNoise", "GaussianDropout",
                            "AlphaDropout", "ActivityRegularization", "Identity", "SpatialDropout1D",
                            "SpatialDropout2D", "SpatialDropout3D"),
        "softmax": pick("Softmax"),
        "spatial": pick(*(f"{p}{d}" for p in ("MaxPooling", "AveragePooling", "ZeroPadding", "Cropping",
                                              "UpSampling") for d in dims)),
        "global_pool": pick(*(f"Global{p}Pooling{d}" for p in ("Average", "Max") for d in dims)),
        "probe": pick("Flatten", "Reshape", "Permute"),
        "merge": pick("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"),
        "concat": pick("Concatenate"),
        "barrier": pick("LayerNormalization", "UnitNormalization", "GroupNormalization"),
        "input": pick("InputLayer"),
    }


def layer_family(layer: Any) -> str | None:
    """The analysis family of ``layer`` ("conv", "dense", "batchnorm", ...), None for an unknown type."""
    return _family(layer, _layer_types())


def _family(layer: Any, types: dict[str, tuple[type, ...]]) -> str | None:
    # Exact classes only: a subclass may override call() and mean something else.
    for family, classes in types.items():
        if type(layer) in classes:
            return family
    return None


def _channel_axis(data_format: str | None, rank: int) -> int:
    return 1 if data_format == "channels_first" else rank - 1


def _shape(tensor: Any) -> tuple[int | None, ...]:
    return tuple(tensor.shape)


class _Analyzer:
    def __init__(self, model: Any):
        self.model = model
        self.types = _layer_types()
        self.groups = Groups()
        self.maps: dict[int, ChannelMap | None] = {}
        self.layers: dict[str, LayerInfo] = {}
        self.output_groups: dict[str, set[int]] = {}
        self.opaque_inputs: dict[str, set[int]] = {}

    # -- helpers -------------------------------------------------------------------------------------------------
    def fix_all(self, maps: Iterable[ChannelMap | None], reason: str) -> None:
        for m in maps:
            if m is not None:
                for gid in m.groups():
                    self.groups.fix(gid, reason)

    def info(self, layer: Any, kind: str) -> LayerInfo:
        found = self.layers.get(layer.name)
        if found is None:
            found = self.layers[layer.name] = LayerInfo(layer, kind)
        return found

    def record_input(self, info: LayerInfo, in_map: ChannelMap | None, first_call: bool) -> None:
        """A weighted layer called several times needs the same input channels at every call."""
        if first_call:
            info.in_map = in_map
            return
        if info.in_map is None or in_map is None:
            self.fix_all([info.in_map, in_map], f"shared layer '{info.name}'")
            if info.in_map is None:
                info.in_map = in_map
        elif not self.tie(info.in_map, in_map, f"shared layer '{info.name}'"):
            self.fix_all([info.in_map, in_map], f"shared layer '{info.name}'")

    def tie(self, a: ChannelMap, b: ChannelMap, reason: str) -> bool:
        """Make two maps of the same channels keep the same filters; False (and fix) when impossible."""
        if a.axis != b.axis or len(a) != len(b):
            self.fix_all([a, b], reason)
            return False
        a_fixed, b_fixed = a.gid < 0, b.gid < 0
        for gid in np.unique(np.concatenate([a.gid[b_fixed & ~a_fixed], b.gid[a_fixed & ~b_fixed]])):
            self.groups.fix(int(gid), reason)
        both = ~a_fixed & ~b_fixed
        pairs = {(int(x), int(y)) for x, y in zip(a.gid[both], b.gid[both], strict=True)}
        same_index = bool(np.array_equal(a.idx[both], b.idx[both]))
        same_size = all(self.groups.size[x] == self.groups.size[y] for x, y in pairs)
        if not (same_index and same_size):
            for x, y in pairs:
                self.groups.fix(x, reason)
                self.groups.fix(y, reason)
            return False
        for x, y in pairs:
            self.groups.union(x, y)
        return True

    # -- the walk ------------------------------------------------------------------------------------------------
    def run(self) -> GraphAnalysis:
        import keras

        for layer in self.model.layers:
            if isinstance(layer, keras.Model):
                raise UnsupportedError(f"layer '{layer.name}' is a nested model ({type(layer).__name__}); "
                                       "tlt-prune needs one flat functional model")
        nodes_by_depth = getattr(self.model, "_nodes_by_depth", None)
        if nodes_by_depth is None:
            raise UnsupportedError(f"{type(self.model).__name__} models are not supported; tlt-prune needs a "
                                   "functional model")
        seen_calls: set[str] = set()
        for depth in sorted(nodes_by_depth, reverse=True):
            for node in nodes_by_depth[depth]:
                op = node.operation
                first = op.name not in seen_calls
                seen_calls.add(op.name)
                in_maps = [self.maps.get(id(t)) for t in node.input_tensors]
                outs = self.visit(op, node.input_tensors, in_maps, node.output_tensors, first)
                if first and op.name in self.layers and outs:
                    self.layers[op.name].out_map = outs[0]
                for tensor, out_map in zip(node.output_tensors, outs, strict=True):
                    self.maps[id(tensor)] = out_map
                    if out_map is not None:
                        self.output_groups.setdefault(op.name, set()).update(out_map.groups())
        output_maps = [self.maps.get(id(t)) for t in self.model.outputs]
        for tensor, out_map in zip(self.model.outputs, output_maps, strict=True):
            if out_map is not None:
                name = tensor._keras_history.operation.name
                for gid in out_map.groups():
                    self.groups.fix(gid, f"model output '{name}'")
        return GraphAnalysis(self.groups, self.layers, output_maps, self.opaque_inputs, self.output_groups)

    def visit(self, op: Any, ins: Sequence[Any], in_maps: list[ChannelMap | None], outs: Sequence[Any],
              first: bool) -> list[ChannelMap | None]:
        family = _family(op, self.types)
        if family == "input":
            return [None] * len(outs)
        if family in ("conv", "transpose", "separable", "dense"):
            return [self.producer(op, family, ins[0], in_maps[0], outs[0], first)]
        follow = getattr(type(op), PRUNED_CHANNELS_FOLLOW, None)
        if family is None and getattr(type(op), PRUNED_CHANNELS_FIXED, False):
            self.barrier(op, in_maps, "the layer declares its input channels fixed")
            return [None] * len(outs)
        if family is None and follow is not None:
            return [self.follow_input(op, ins, in_maps, outs[0], int(follow)), *[None] * (len(outs) - 1)]
        if family is None:
            info = self.info(op, OPAQUE)
            gids = set().union(*(m.groups() for m in in_maps if m is not None))
            if gids:
                self.opaque_inputs.setdefault(op.name, set()).update(gids)
                info.reason = "unknown layer type"
            return [None] * len(outs)
        if all(m is None for m in in_maps):
            # Nothing prunable reaches it: it stays exactly as it is.
            self.info(op, PASSTHROUGH)
            return [None] * len(outs)
        handler = getattr(self, f"visit_{family}")
        return [handler(op, ins, in_maps, outs[0], first)]

    def follow_input(self, op: Any, ins: Sequence[Any], in_maps: list[ChannelMap | None], out: Any,
                     index: int) -> ChannelMap | None:
        """A layer of an architecture that declares ``pruned_channels_follow_input = k``: the last axis of its
        (first) output is the last axis of its input k, channel for channel, and it has no weights that depend on
        them (FasterRCNN's crop-and-resize and ROI regrouping). Prunable channels of other inputs are fixed."""
        others = [m for i, m in enumerate(in_maps) if i != index]
        self.fix_all(others, f"input of '{op.name}' whose channels it does not pass on")
        in_map = in_maps[index] if index < len(in_maps) else None
        self.info(op, PASSTHROUGH)
        if in_map is None:
            return None
        if in_map.axis != len(_shape(ins[index])) - 1:
            self.barrier(op, [in_map], "channels are not on the last axis")
            return None
        return ChannelMap(len(_shape(out)) - 1, in_map.gid, in_map.idx)

    def barrier(self, op: Any, in_maps: Sequence[ChannelMap | None], reason: str) -> None:
        info = self.info(op, BARRIER)
        info.reason = reason
        self.fix_all(in_maps, f"{reason} ('{op.name}')")

    def producer(self, op: Any, family: str, tensor: Any, in_map: ChannelMap | None, out: Any,
                 first: bool) -> ChannelMap | None:
        info = self.info(op, PRODUCER)
        rank = len(_shape(tensor))
        if family == "dense":
            in_axis = out_axis = rank - 1
            size = int(op.units)
        else:
            in_axis = out_axis = _channel_axis(op.data_format, rank)
            size = int(op.filters)
            if family == "conv" and int(getattr(op, "groups", 1)) != 1:
                self.barrier(op, [in_map], "grouped convolution")
                return None
        if in_map is not None and in_map.axis != in_axis:
            self.fix_all([in_map], f"'{op.name}' does not contract the channel axis")
            in_map = None
        self.record_input(info, in_map, first)
        if info.group is None:
            info.group = self.groups.new(size, op.name)
        return ChannelMap(out_axis, np.full(size, info.group), np.arange(size))

    def visit_depthwise(self, op, ins, in_maps, out, first):
        in_map = in_maps[0]
        if in_map.axis != _channel_axis(op.data_format, len(_shape(ins[0]))):
            self.barrier(op, in_maps, "data format does not match the channel axis")
            return None
        info = self.info(op, DEPTHWISE)
        self.record_input(info, in_map, first)
        multiplier = int(op.depth_multiplier)
        return ChannelMap(in_map.axis, np.repeat(in_map.gid, multiplier), np.repeat(in_map.idx, multiplier))

    def visit_batchnorm(self, op, ins, in_maps, out, first):
        in_map = in_maps[0]
        axes = op.axis if isinstance(op.axis, (list, tuple)) else [op.axis]
        rank = len(_shape(ins[0]))
        if [a % rank for a in axes] != [in_map.axis]:
            self.barrier(op, in_maps, "normalization axis is not the channel axis")
            return None
        info = self.info(op, CHANNELWISE)
        self.record_input(info, in_map, first)
        return in_map

    def visit_prelu(self, op, ins, in_maps, out, first):
        info = self.info(op, CHANNELWISE)
        self.record_input(info, in_maps[0], first)
        return in_maps[0]

    def visit_elementwise(self, op, ins, in_maps, out, first):
        in_map = in_maps[0]
        activation = getattr(getattr(op, "activation", None), "__name__", "")
        if activation in ("softmax", "log_softmax") and in_map.axis == len(_shape(ins[0])) - 1:
            self.barrier(op, in_maps, "softmax over the channels")
            return None
        self.info(op, PASSTHROUGH)
        return in_map

    def visit_softmax(self, op, ins, in_maps, out, first):
        rank = len(_shape(ins[0]))
        axes = op.axis if isinstance(op.axis, (list, tuple)) else [op.axis]
        if in_maps[0].axis in [a % rank for a in axes]:
            self.barrier(op, in_maps, "softmax over the channels")
            return None
        self.info(op, PASSTHROUGH)
        return in_maps[0]

    def visit_spatial(self, op, ins, in_maps, out, first):
        in_map = in_maps[0]
        if in_map.axis != _channel_axis(op.data_format, len(_shape(ins[0]))):
            self.barrier(op, in_maps, "data format does not match the channel axis")
            return None
        self.info(op, PASSTHROUGH)
        return in_map

    def visit_global_pool(self, op, ins, in_maps, out, first):
        in_map = in_maps[0]
        if in_map.axis != _channel_axis(op.data_format, len(_shape(ins[0]))):
            self.barrier(op, in_maps, "data format does not match the channel axis")
            return None
        self.info(op, PASSTHROUGH)
        return ChannelMap(in_map.axis if op.keepdims else 1, in_map.gid, in_map.idx)

    def visit_probe(self, op, ins, in_maps, out, first):
        """Run the layer on a tensor holding each element's channel position; read where channels went."""
        in_map = in_maps[0]
        shape = _shape(ins[0])[1:]
        if any(d is None for d in shape) or any(d is None for d in _shape(out)[1:]):
            self.barrier(op, in_maps, "needs static shapes")
            return None
        positions = np.arange(len(in_map), dtype=np.float32)
        view = [1] * len(shape)
        view[in_map.axis - 1] = len(in_map)
        probe = np.broadcast_to(positions.reshape(view), tuple(int(d) for d in shape if d is not None))[None, ...]
        result = np.asarray(op(probe)).astype(np.int64)[0]
        axis = _constant_axis(result)
        if axis is None:
            self.barrier(op, in_maps, "mixes channels with other axes")
            return None
        line = np.moveaxis(result, axis, 0).reshape(result.shape[axis], -1)[:, 0]
        self.info(op, PASSTHROUGH)
        return in_map.take(line, axis + 1)

    def visit_merge(self, op, ins, in_maps, out, first):
        self.info(op, PASSTHROUGH)
        return self.merge(op, ins, in_maps)

    def merge(self, op: Any, ins: Sequence[Any], in_maps: list[ChannelMap | None]) -> ChannelMap | None:
        reason = f"element-wise '{op.name}'"
        present = [m for m in in_maps if m is not None]
        ref = max(present, key=len)
        ref_rank = len(_shape(ins[next(i for i, m in enumerate(in_maps) if m is ref)]))
        for tensor, m in zip(ins, in_maps, strict=True):
            rank = len(_shape(tensor))
            if m is None:
                # A fixed input: broadcast along the channels (size 1) constrains nothing.
                position = ref.axis - (ref_rank - rank)
                size = _shape(tensor)[position] if position >= 0 else 1
                if size != 1:
                    self.fix_all(present, reason)
                continue
            if m is ref:
                continue
            if rank == ref_rank and m.axis == ref.axis and len(m) == len(ref):
                self.tie(ref, m, reason)
            elif not (rank == ref_rank and len(m) == 1):
                self.barrier(op, in_maps, "inputs with unrelated channels")
                return None
        return ref

    def visit_concat(self, op, ins, in_maps, out, first):
        rank = len(_shape(out))
        axis = op.axis % rank
        present = [m for m in in_maps if m is not None]
        if all(m.axis != axis for m in present):
            # Concatenation along another axis: the channels of all inputs must line up.
            self.info(op, PASSTHROUGH)
            return self.merge(op, ins, in_maps)
        if any(m.axis != axis for m in present):
            self.barrier(op, in_maps, "inputs with unrelated channels")
            return None
        gids, idxs = [], []
        for tensor, m in zip(ins, in_maps, strict=True):
            if m is None:
                size = _shape(tensor)[axis]
                if size is None:
                    self.barrier(op, in_maps, "needs static shapes")
                    return None
                gids.append(np.full(size, -1))
                idxs.append(np.zeros(size, dtype=np.int64))
            else:
                gids.append(m.gid)
                idxs.append(m.idx)
        self.info(op, PASSTHROUGH)
        return ChannelMap(axis, np.concatenate(gids), np.concatenate(idxs))

    def visit_barrier(self, op, ins, in_maps, out, first):
        self.barrier(op, in_maps, f"{type(op).__name__} needs all its input channels")
        return None


def _constant_axis(values: np.ndarray) -> int | None:
    """The axis along which ``values`` vary while constant along every other axis (largest; last on ties)."""
    best = None
    for axis in range(values.ndim):
        moved = np.moveaxis(values, axis, 0).reshape(values.shape[axis], -1)
        if np.all(moved == moved[:, :1]) and (best is None or values.shape[axis] >= values.shape[best]):
            best = axis
    return best


def analyze(model: Any) -> GraphAnalysis:
    """Walk ``model`` from its inputs and return the channel groups, per-layer roles and fixed groups."""
    return _Analyzer(model).run()

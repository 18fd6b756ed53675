"""Backbone tables for spec validation: supported ``arch`` names, depths and ``freeze_blocks`` IDs.

Pure data (no TensorFlow): the detection validators check ``arch`` / ``num_layers`` (``nlayers``) /
``freeze_blocks`` against these tables, and :func:`backbone_name` turns the manuals' two fields into
one name such as ``resnet18`` for the model builders.

Sources: 000 §7.2.1 (DetectNet_v2 model_config), §7.4.6 / §7.5.6 / §7.6.6 / §7.7.6 (SSD family
``arch``, ``nlayers``, ``freeze_blocks``), chapter 3 (backbone / architecture matrix), 001 (TAO
DetectNet_v2 model_config) and REFERENCE.md "Backbone layer names".
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backbone:
    """One feature-extractor family as a spec names it."""

    arch: str
    #: Supported depths (``num_layers`` / ``nlayers``); empty when the arch has no depth setting.
    depths: tuple[int, ...]
    #: Valid ``freeze_blocks`` IDs; ``None`` where the manuals document none.
    freeze_blocks: tuple[int, ...] | None


# ResNet: 000 lists freeze IDs [0, 1, 2, 3]; 001 (TAO DetectNet_v2) lists [0, 1, 2, 3, 4] and
# REFERENCE.md defines block 0 = stem, 1-4 = the four stages, so every existing block is accepted.
BACKBONES: dict[str, Backbone] = {
    "resnet": Backbone("resnet", (10, 18, 34, 50, 101), tuple(range(5))),
    "vgg": Backbone("vgg", (16, 19), tuple(range(1, 6))),
    "googlenet": Backbone("googlenet", (), tuple(range(8))),
    "mobilenet_v1": Backbone("mobilenet_v1", (), tuple(range(12))),
    "mobilenet_v2": Backbone("mobilenet_v2", (), tuple(range(14))),
    "darknet": Backbone("darknet", (19, 53), tuple(range(6))),
    # Chapter 3 lists SqueezeNet for every detector but FasterRCNN; no freeze IDs are documented.
    "squeezenet": Backbone("squeezenet", (), None),
    # Classification (000 §7.1) also offers AlexNet (no freeze IDs documented); 003 adds EfficientNet
    # b0-b5, whose variants share the stem + 7 stages (+ top) block layout.
    "alexnet": Backbone("alexnet", (), None),
    "efficientnet": Backbone("efficientnet", (), tuple(range(8))),
}

#: ``arch`` values of the SSD, DSSD, RetinaNet and YOLOv3 configs (000 §7.4.6 "arch").
SSD_FAMILY_ARCHS: tuple[str, ...] = (
    "resnet", "vgg", "darknet", "googlenet", "mobilenet_v1", "mobilenet_v2", "squeezenet",
)

#: ``model_config.arch`` of DetectNet_v2: the 7.2.1 table lists resnet, vgg, mobilenet_v1,
#: mobilenet_v2 and googlenet; chapter 3's matrix and pretrained-model list add darknet and squeezenet.
DETECTNET_V2_ARCHS: tuple[str, ...] = (
    "resnet", "vgg", "mobilenet_v1", "mobilenet_v2", "googlenet", "darknet", "squeezenet",
)

#: Architectures whose shortcut connections ``all_projections`` applies to (000 §7.2.1, §7.3.1).
SHORTCUT_ARCHS: tuple[str, ...] = ("resnet", "mobilenet_v2")


def backbone(arch: str, supported: tuple[str, ...] = SSD_FAMILY_ARCHS) -> Backbone:
    """The table entry for ``arch``; ``ValueError`` naming the supported values when unknown."""
    if arch not in supported or arch not in BACKBONES:
        raise ValueError(f"unsupported arch {arch!r} (supported: {', '.join(supported)})")
    return BACKBONES[arch]


def check_depth(arch: str, depth: int) -> None:
    """``ValueError`` unless ``depth`` is a supported depth of ``arch`` (depth-less archs accept any)."""
    entry = backbone(arch, tuple(BACKBONES))
    if entry.depths and depth not in entry.depths:
        raise ValueError(f"{arch} supports {', '.join(map(str, entry.depths))} layers, got {depth}")


def check_freeze_block(arch: str, block: float) -> None:
    """``ValueError`` unless ``block`` is a valid freeze block ID of ``arch``."""
    entry = backbone(arch, tuple(BACKBONES))
    if block != int(block) or block < 0:
        raise ValueError(f"block IDs are non-negative integers, got {block:g}")
    if entry.freeze_blocks is not None and int(block) not in entry.freeze_blocks:
        first, last = entry.freeze_blocks[0], entry.freeze_blocks[-1]
        raise ValueError(f"{arch} block IDs valid for freezing are {first}-{last}, got {int(block)}")


def backbone_name(arch: str, depth: int | None = None) -> str:
    """One name for (arch, depth): ``resnet`` + 18 → ``resnet18``; depth-less archs keep their name."""
    entry = backbone(arch, tuple(BACKBONES))
    if not entry.depths:
        return arch
    if depth is None:
        raise ValueError(f"{arch} needs a number of layers ({', '.join(map(str, entry.depths))})")
    check_depth(arch, depth)
    return f"{arch}{depth}"

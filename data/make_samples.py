"""Builds the embedded sample set `data/samples/` and `data/PROVENANCE.md` (deterministic).

Sources: the colour photographs that ship inside the scikit-image and scikit-learn wheels (public
domain, CC0 or CC BY 2.0; nothing is downloaded). Each photograph is cut into a centred grid of
non-overlapping CROP x CROP tiles; tiles with almost no detail (flat sky, out-of-focus background)
are dropped because a restoration model learns nothing from them. Kept tiles are saved as PNG
(lossless: the pixels are exactly the decoded source pixels) as `<photo>_<NN>.png`, numbered in
row-major grid order.

    python data/make_samples.py            # (re)write data/samples/ and data/PROVENANCE.md
    python data/make_samples.py --check    # rebuild in memory, compare with the committed files

The source files' SHA-256 are pinned below: a different package build with different pixels is an
error, so re-running always reproduces the committed set (pixel for pixel).
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import os
import sys
from dataclasses import dataclass

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLES_DIR = os.path.join(HERE, "samples")
PROVENANCE = os.path.join(HERE, "PROVENANCE.md")

CROP = 128  # tile edge: the tiny preset takes 64x64 crops (16x16 LR for SR x4) from these
# Minimum detail: mean absolute difference between neighbouring BT.601 luma values (0..255 levels),
# vertical + horizontal. Flat sky scores ~1, bokeh ~1.5, textured tiles 5..50.
MIN_DETAIL = 4.0


class SourceError(RuntimeError):
    """A source photograph is missing or is not the pinned file."""


@dataclass(frozen=True)
class Source:
    stem: str  # sample file prefix
    package: str  # import name
    distribution: str  # PyPI name (for the version)
    path: str  # file inside the package
    sha256: str  # of the file in the wheel: pins the exact pixels
    licence: str
    credit: str


SOURCES = (
    Source("astronaut", "skimage", "scikit-image", "data/astronaut.png",
           "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
           "Public domain",
           "NASA (Eileen Collins), NASA Great Images database, https://flic.kr/p/r9qvLn: "
           "'No known copyright restrictions, released into the public domain' (skimage.data.astronaut)"),
    Source("coffee", "skimage", "scikit-image", "data/coffee.png",
           "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
           "CC0", "Rachel Michetti, courtesy of Pikolo Espresso Bar (skimage.data.coffee)"),
    Source("chelsea", "skimage", "scikit-image", "data/chelsea.png",
           "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
           "CC0", "Stefan van der Walt (skimage.data.chelsea)"),
    Source("rocket", "skimage", "scikit-image", "data/rocket.jpg",
           "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
           "Public domain",
           "SpaceX, DSCOVR launch on Falcon 9, https://www.flickr.com/photos/spacexphotos/16511594820/ "
           "(skimage.data.rocket)"),
    Source("china", "sklearn", "scikit-learn", "datasets/images/china.jpg",
           "8378025ad2519d649d02e32bd98990db4ab572357d9f09841c2fbfbb4fefad29",
           "CC BY 2.0 (https://creativecommons.org/licenses/by/2.0/)",
           "danielbuechele, https://www.flickr.com/photos/danielbuechele/6061409035/, "
           "retrieved by Robert Layton (sklearn/datasets/images/README.txt)"),
    Source("flower", "sklearn", "scikit-learn", "datasets/images/flower.jpg",
           "a77f6ec41e353afdf8bdff2ea981b2955535d8d83294f8cfa49cf4e423dd5638",
           "CC BY 2.0 (https://creativecommons.org/licenses/by/2.0/)",
           "vultilion, https://www.flickr.com/photos/vultilion/6056698931/, retrieved by Robert Layton "
           "(sklearn/datasets/images/README.txt; its credit line names danielbuechele but its links "
           "point to vultilion)"),
)


@dataclass(frozen=True)
class Sample:
    name: str  # file name in data/samples
    source: Source
    version: str  # package version the source came from
    box: tuple  # (left, top, right, bottom) in source pixels
    detail: float
    pixels: np.ndarray  # uint8 (CROP, CROP, 3)


def source_file(src: Source) -> str:
    spec = importlib.util.find_spec(src.package)  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise SourceError(f"{src.distribution} is not installed; it provides {src.path}")
    return os.path.join(list(spec.submodule_search_locations)[0], src.path)


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def detail(tile: np.ndarray) -> float:
    y = tile.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return float(np.abs(np.diff(y, axis=0)).mean() + np.abs(np.diff(y, axis=1)).mean())


def tiles(src: Source) -> list:
    """All kept tiles of one source photograph."""
    path = source_file(src)
    digest = sha256(path)
    if digest != src.sha256:
        raise SourceError(f"{path}: SHA-256 {digest} differs from the pinned {src.sha256}; "
                         "this package build ships a different image, so the samples would change")
    with Image.open(path) as im:
        if im.mode != "RGB":
            raise SourceError(f"{path}: expected an RGB photograph, got mode {im.mode}")
        rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    version = importlib.metadata.version(src.distribution)
    h, w = rgb.shape[:2]
    rows, cols = h // CROP, w // CROP
    top0, left0 = (h - rows * CROP) // 2, (w - cols * CROP) // 2  # centre the grid
    kept = []
    for r in range(rows):
        for c in range(cols):
            top, left = top0 + r * CROP, left0 + c * CROP
            tile = rgb[top:top + CROP, left:left + CROP]
            d = detail(tile)
            if d < MIN_DETAIL:
                continue
            name = f"{src.stem}_{len(kept) + 1:02d}.png"
            kept.append(Sample(name, src, version, (left, top, left + CROP, top + CROP), d, tile.copy()))
    return kept


def build() -> list:
    return [s for src in SOURCES for s in tiles(src)]


def provenance_markdown(samples: list) -> str:
    lines = [
        "# Provenance of `data/samples/`",
        "",
        "Generated by `python data/make_samples.py` (do not edit by hand). Every sample is a "
        f"{CROP}x{CROP} crop of a colour photograph shipped inside the scikit-image / scikit-learn wheels, "
        "saved losslessly as PNG (pixels identical to the decoded source). Crops are a centred grid of "
        f"non-overlapping tiles; tiles with mean absolute luma gradient below {MIN_DETAIL} "
        "(flat sky, blurred background) were left out. Crop box: (left, top, right, bottom) in source pixels.",
        "",
        "## Source photographs",
        "",
        "| photo | package | original file | SHA-256 of original | licence | credit |",
        "|---|---|---|---|---|---|",
    ]
    seen = []
    for s in samples:
        if s.source.stem in seen:
            continue
        seen.append(s.source.stem)
        lines.append(f"| {s.source.stem} | {s.source.distribution} {s.version} | "
                     f"`{s.source.package}/{s.source.path}` | `{s.source.sha256}` | "
                     f"{s.source.licence} | {s.source.credit} |")
    lines += [
        "",
        "The CC BY 2.0 photographs (china, flower) were modified: cropped into tiles and re-encoded as PNG.",
        "",
        "## Samples",
        "",
        "| file | source (package version, original file) | licence | crop box | detail |",
        "|---|---|---|---|---|",
    ]
    for s in samples:
        lines.append(f"| {s.name} | {s.source.distribution} {s.version}, `{s.source.package}/{s.source.path}` | "
                     f"{s.source.licence.split(' (')[0]} | {s.box} | {s.detail:.1f} |")
    return "\n".join(lines) + "\n"


def write(samples: list, out_dir: str = SAMPLES_DIR, provenance: str = PROVENANCE) -> None:
    os.makedirs(out_dir, exist_ok=True)
    wanted = {s.name for s in samples}
    for f in os.listdir(out_dir):  # stale files from an earlier run would be ingested as samples
        if f not in wanted:
            os.remove(os.path.join(out_dir, f))
    for s in samples:
        Image.fromarray(s.pixels).save(os.path.join(out_dir, s.name), format="PNG", compress_level=9)
    with open(provenance, "w", encoding="utf-8") as f:
        f.write(provenance_markdown(samples))


def differences(samples: list, out_dir: str = SAMPLES_DIR, provenance: str = PROVENANCE) -> list:
    """What differs between a fresh build and the files on disk (empty when identical)."""
    problems = []
    on_disk = set(os.listdir(out_dir)) if os.path.isdir(out_dir) else set()
    names = {s.name for s in samples}
    problems += [f"extra file {n}" for n in sorted(on_disk - names)]
    problems += [f"missing file {n}" for n in sorted(names - on_disk)]
    for s in samples:
        if s.name in on_disk:
            with Image.open(os.path.join(out_dir, s.name)) as im:
                if not np.array_equal(np.asarray(im), s.pixels):
                    problems.append(f"pixels differ: {s.name}")
    if not os.path.isfile(provenance):
        problems.append(f"missing {provenance}")
    else:
        with open(provenance, encoding="utf-8") as f:
            if f.read() != provenance_markdown(samples):
                problems.append(f"{os.path.basename(provenance)} differs")
    return problems


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="compare a fresh build with the committed files")
    args = p.parse_args(argv)
    try:
        samples = build()
    except SourceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.check:
        problems = differences(samples)
        for line in problems:
            print(line)
        print(f"{len(samples)} samples: " + ("differences found" if problems else "identical"))
        return 1 if problems else 0
    write(samples)
    size = sum(os.path.getsize(os.path.join(SAMPLES_DIR, s.name)) for s in samples)
    print(f"wrote {len(samples)} samples ({size / 1e6:.2f} MB) to {SAMPLES_DIR} and {PROVENANCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

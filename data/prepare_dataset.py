"""Lays out a user's own CelebA or GOPRO download for the pipeline, checks the result, prints a summary.
(One script of ~620 lines on purpose: the three layouts share its archive reader, summary and command line.)

    python data/prepare_dataset.py celeba --images img_align_celeba.zip \\
        --partition list_eval_partition.txt --out /data/celeba
    python data/prepare_dataset.py gopro --source GOPRO_Large.zip --out /data/gopro
    python data/prepare_dataset.py gopro --check-only --out /data/gopro     # check an existing layout
    python data/prepare_dataset.py tiles --source photos/ more.png --tile 128 --out /data/tiles

Layouts written (what `data.layout` = celeba | gopro reads, with `data.root` = --out):
    celeba: <out>/img_align_celeba/*.jpg and <out>/list_eval_partition.txt ("000001.jpg 0" per line;
            0 train, 1 eval, 2 test)
    gopro:  <out>/{train,test}/<scene>/{blur,sharp}/*.png (blur: the linear `blur` frames by default,
            `--blur blur_gamma` for the gamma-corrected ones)
    tiles:  <out>/<name>_y<Y>_x<X>.png, tile x tile squares (every --stride pixels; default: no overlap)
            cut from every image of the sources (files or folders, searched recursively) for the folder
            layout: the pipeline takes one crop per image, so a few large photographs become many
            training examples
    pair-tiles: <out>/{blur,sharp}/<name>_y<Y>_x<X>.png, aligned tiles of blur/sharp frame pairs: one
            scene folder of the gopro layout (<root>/{train,test}/<scene>); a scene with only sharp/
            is blurred synthetically by Transform

Sources may be the zip archives as downloaded or their extracted folders (any nesting, e.g. Kaggle's
img_align_celeba/img_align_celeba/ and list_eval_partition.csv). Files already in place with the same
size are kept, so an interrupted run can be resumed. The check counts images, partition entries and
pairs, and lists problems. Files the pipeline would reject are named with ImageExampleGen's own reasons
(contracts/datasets.py: empty, not_image, corrupt, truncated, unpartitioned, unpaired, size_mismatch,
too_small, and not_a_file, symlink_loop, dangling_symlink, unreadable for what is no readable regular
file: never opened), judged from each file's header, or by ingestion's full check with --verify. Exit status:
0 done (problems are warnings), 1 problems found with --strict, 2 wrong input (the message says what
was expected).
"""
from __future__ import annotations

import argparse
import os
import posixpath
import re
import shutil
import sys
import zipfile
from dataclasses import dataclass, field

from config.sections import DataConfig
from contracts.datasets import (
    CELEBA_IMAGES,
    CELEBA_PARTITION,
    CELEBA_PARTITION_CSV,
    CELEBA_SPLITS,
    GOPRO_SPLITS,
    is_image_name,
    pair_frames,
    parse_partition,
    sharp_only_scene,
)

CELEBA_OFFICIAL = {"train": 162_770, "eval": 19_867, "test": 19_962}
GOPRO_OFFICIAL = {"train": (22, 2_103), "test": (11, 1_111)}  # (scenes, pairs) of GOPRO_Large
GOPRO_FRAME = re.compile(r"(?:^|/)(train|test)/([^/]+)/(blur|blur_gamma|sharp)/([^/]+)$")
SAFE_NAME = re.compile(r"^[\w][\w.+-]*$")  # file/scene names we write: no separators, no "..", no dotfiles
MODES = ("copy", "hardlink", "symlink")
RUN_HINT = {"celeba": "srgan-celeba", "gopro": "deblurgan-gopro", "tiles": "srresnet-psnr",
            "pair-tiles": "deblurgan-gopro"}


class LayoutError(Exception):
    """The input is not what this dataset's layout expects (the message says what was expected)."""


@dataclass
class Summary:
    dataset: str
    root: str
    counts: dict = field(default_factory=dict)
    problems: dict = field(default_factory=dict)  # kind -> [detail, ...]
    notes: list = field(default_factory=list)

    def add(self, kind: str, detail: str) -> None:
        self.problems.setdefault(kind, []).append(detail)

    @property
    def num_problems(self) -> int:
        return sum(len(v) for v in self.problems.values())

    def format(self, max_listed: int = 5) -> str:
        lines = [f"{self.dataset} layout at {self.root}"]
        lines += [f"  {k}: {v}" for k, v in self.counts.items()]
        lines.append(f"  problems: {self.num_problems}")
        for kind, details in sorted(self.problems.items()):
            shown = ", ".join(details[:max_listed]) + (", ..." if len(details) > max_listed else "")
            lines.append(f"    {kind} ({len(details)}): {shown}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


# -- sources: a folder or a zip archive, read the same way ---------------------------------------------


class Source:
    """Files of a folder or a zip archive as relative '/'-paths, copied out one by one.

    Destination paths are always rebuilt from validated name parts, never from a member path, so a
    hostile archive cannot write outside --out.
    """

    def __init__(self, path: str):
        self.path = path
        self.zip = None
        if os.path.isdir(path):
            return
        if not os.path.exists(path):
            raise LayoutError(f"{path}: no such file or folder")
        if not zipfile.is_zipfile(path):
            raise LayoutError(f"{path}: neither a folder nor a zip archive")
        self.zip = zipfile.ZipFile(path)

    def names(self) -> list:
        if self.zip is not None:
            names = [i.filename for i in self.zip.infolist() if not i.is_dir()]
        else:
            names = []
            for dirpath, dirnames, filenames in os.walk(self.path):
                dirnames.sort()
                rel = os.path.relpath(dirpath, self.path).replace(os.sep, "/")
                names += [f if rel == "." else f"{rel}/{f}" for f in sorted(filenames)]
        # macOS archive litter and hidden files are never data.
        return [n for n in names if not n.startswith("__MACOSX/") and not posixpath.basename(n).startswith(".")]

    def read_bytes(self, name: str) -> bytes:
        if self.zip is not None:
            return self.zip.read(name)
        with open(os.path.join(self.path, name), "rb") as f:
            return f.read()

    def place(self, name: str, dest: str, mode: str) -> bool:
        """Copy (or link) one file to dest; False when an identical-size file is already there."""
        if self.zip is not None:
            info = self.zip.getinfo(name)
            if os.path.isfile(dest) and os.path.getsize(dest) == info.file_size:
                return False
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            tmp = dest + ".part"
            with self.zip.open(info) as src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            os.replace(tmp, dest)  # never leave a truncated file under the final name
            return True
        src = os.path.abspath(os.path.join(self.path, name))
        if os.path.lexists(dest):
            if os.path.exists(dest) and (os.path.samefile(src, dest) or
                                         os.path.getsize(src) == os.path.getsize(dest)):
                return False
            os.remove(dest)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if mode == "symlink":
            os.symlink(src, dest)
        elif mode == "hardlink":
            try:
                os.link(src, dest)
            except OSError as e:
                raise LayoutError(f"cannot hard-link {src} -> {dest} ({e}); use --mode copy or symlink") from e
        else:
            tmp = dest + ".part"
            shutil.copyfile(src, tmp)
            os.replace(tmp, dest)
        return True

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


def _place_all(src: Source, jobs: list, mode: str, summary: Summary) -> None:
    """jobs: (member name, destination path). Progress on stderr for the 200k-file CelebA case."""
    written = 0
    for i, (name, dest) in enumerate(jobs, 1):
        written += src.place(name, dest, mode)
        if i % 20_000 == 0:
            print(f"  ... {i}/{len(jobs)} files", file=sys.stderr)
    kept = len(jobs) - written
    how = "extracted" if src.zip is not None else {"copy": "copied", "hardlink": "hard-linked",
                                                     "symlink": "symlinked"}[mode]
    summary.notes.insert(0, f"{written} files {how} from {src.path}" + (f", {kept} already in place" if kept else ""))
    if src.zip is not None and mode != "copy":
        summary.notes.append(f"--mode {mode} does not apply to a zip archive: its files were extracted")


def _safe(part: str, what: str) -> str:
    if not SAFE_NAME.match(part):
        raise LayoutError(f"refusing {what} {part!r}: not a plain file or folder name")
    return part


def _check_image_file(path: str, decode: bool):
    """None when ingestion would take the file as an image, else (reason, detail) in its vocabulary:
    from the header alone, or (decode) with ImageExampleGen's own full check."""
    from components import image_check

    try:
        size = image_check.regular_size(path)  # a FIFO, a dangling or looping link: rejected, never opened
        if size == 0:
            raise image_check.Rejected("empty", "0 bytes")
        if decode:
            image_check.check_image(image_check.read_file(path), min_size=1, max_pixels=DataConfig().max_pixels)
        else:
            with open(path, "rb") as f:
                image_check.open_header(f, size).close()
    except OSError as e:  # the open: permissions, I/O
        return "unreadable", f"{type(e).__name__}: {e.strerror or e}"
    except image_check.Rejected as r:
        return r.reason, r.detail
    return None


def _check_files(root: str, rels: list, decode: bool, summary: Summary) -> set:
    """Checks each file; returns the relative paths that failed."""
    bad = set()
    for rel in rels:
        problem = _check_image_file(os.path.join(root, rel), decode)
        if problem:
            summary.add(problem[0], f"{rel} ({problem[1]})")
            bad.add(rel)
    return bad


# -- CelebA ---------------------------------------------------------------------------------------------


def _partition(text: str, origin: str) -> dict:
    """{file name: split} of a CelebA partition file (contracts.datasets.parse_partition)."""
    try:
        return parse_partition(text, origin)
    except ValueError as e:
        raise LayoutError(str(e)) from None


def _find_partition(names: list, src: Source, images: str, partition: str | None):
    """(text, origin) of the partition file: --partition, else inside the source, else beside it."""
    if partition:
        if zipfile.is_zipfile(partition):
            raise LayoutError(f"{partition}: expected the partition text file, got a zip archive")
        with open(partition, encoding="utf-8", errors="replace") as f:
            return f.read(), partition
    wanted = {CELEBA_PARTITION, CELEBA_PARTITION_CSV}
    for name in names:
        if posixpath.basename(name) in wanted:
            return src.read_bytes(name).decode("utf-8", "replace"), f"{images}:{name}"
    near = os.path.dirname(os.path.abspath(images))
    for folder in (near, os.path.dirname(near)):
        for base in sorted(wanted, reverse=True):  # .txt before .csv
            path = os.path.join(folder, base)
            if os.path.isfile(path):
                with open(path, encoding="utf-8", errors="replace") as f:
                    return f.read(), path
    return None, None


def layout_celeba(images: str, out: str, partition: str | None = None, mode: str = "copy",
                  require_partition: bool = True, decode: bool = False) -> Summary:
    """img_align_celeba.zip (or its folder) [+ list_eval_partition.txt] -> <out>/img_align_celeba/ + partition."""
    src = Source(images)
    try:
        names = src.names()
        jpgs = [n for n in names if n.lower().endswith((".jpg", ".jpeg"))]
        if not jpgs:
            raise LayoutError(f"{images}: no .jpg images found; expected img_align_celeba.zip or its "
                              "extracted folder (aligned & cropped 178x218 JPEGs)")
        by_name = {}
        for n in jpgs:
            base = _safe(posixpath.basename(n), "image name")
            if base in by_name:
                raise LayoutError(f"{images}: {base} appears twice ({by_name[base]} and {n}); "
                                  "point --images at one copy of the images")
            by_name[base] = n
        text, origin = _find_partition(names, src, images, partition)
        if text is None and require_partition:
            raise LayoutError(f"no {CELEBA_PARTITION} given or found in/next to {images}; pass --partition "
                              "(CelebA's Eval/list_eval_partition.txt), or --no-partition to split by hash")
        parsed = _partition(text, origin) if text is not None else None
        summary = Summary("celeba", out)
        img_dir = os.path.join(out, CELEBA_IMAGES)
        _place_all(src, [(n, os.path.join(img_dir, base)) for base, n in sorted(by_name.items())], mode, summary)
    finally:
        src.close()
    if parsed is not None:
        code = {split: c for c, split in CELEBA_SPLITS.items()}
        with open(os.path.join(out, CELEBA_PARTITION), "w", encoding="utf-8") as f:
            f.writelines(f"{name} {code[split]}\n" for name, split in sorted(parsed.items()))
    checked = check_celeba(out, decode=decode)
    checked.notes = summary.notes + checked.notes
    return checked


def check_celeba(root: str, decode: bool = False) -> Summary:
    img_dir = os.path.join(root, CELEBA_IMAGES)
    if not os.path.isdir(img_dir):
        raise LayoutError(f"{root}: no {CELEBA_IMAGES}/ folder; expected {root}/{CELEBA_IMAGES}/*.jpg "
                          f"(+ {CELEBA_PARTITION}); lay it out with `prepare_dataset.py celeba`")
    summary = Summary("celeba", root)
    # Every file is a candidate, as for ImageExampleGen: what is not an image is reported as such.
    images = sorted(f for f in os.listdir(img_dir) if not f.startswith("."))
    if not images:
        raise LayoutError(f"{img_dir}: no images")
    bad = _check_files(img_dir, images, decode, summary)
    summary.counts["images"] = len(images)
    part_path = os.path.join(root, CELEBA_PARTITION)
    if not os.path.isfile(part_path):
        summary.add("no_partition_file", f"{CELEBA_PARTITION} absent: splits will be by hash of the id")
        return summary
    with open(part_path, encoding="utf-8", errors="replace") as f:
        partition = _partition(f.read(), part_path)
    summary.counts["partition entries"] = len(partition)
    per_split = dict.fromkeys(CELEBA_SPLITS.values(), 0)
    for name in images:
        if name in partition:
            if name not in bad:
                per_split[partition[name]] += 1
        elif name not in bad:
            summary.add("unpartitioned", name)
    summary.counts["usable images per split"] = " / ".join(f"{k} {v}" for k, v in per_split.items())
    absent = sorted(set(partition) - set(images))
    if absent:
        # Normal for a partial download; listed so a truncated extraction does not go unnoticed.
        summary.add("partition_entry_without_image", f"{len(absent)} entries, e.g. {absent[0]}")
    if per_split == CELEBA_OFFICIAL:
        summary.notes.append("split sizes match the official CelebA partition")
    else:
        summary.notes.append("a subset of CelebA (official: " +
                             " / ".join(f"{k} {v}" for k, v in CELEBA_OFFICIAL.items()) + ")")
    return summary


# -- GOPRO ----------------------------------------------------------------------------------------------


def layout_gopro(source: str, out: str, blur: str = "blur", mode: str = "copy", decode: bool = False) -> Summary:
    """GOPRO_Large.zip (or its folder) -> <out>/{train,test}/<scene>/{blur,sharp}/*.png."""
    if blur not in ("blur", "blur_gamma"):
        raise LayoutError(f"--blur must be blur or blur_gamma, got {blur!r}")
    src = Source(source)
    try:
        jobs, dests, skipped = [], {}, 0
        for name in src.names():
            m = GOPRO_FRAME.search(name)
            if not m or m.group(3) not in (blur, "sharp"):
                continue
            split, scene, kind, frame = m.groups()
            if not frame.lower().endswith(".png"):
                skipped += 1
                continue
            dest = os.path.join(out, split, _safe(scene, "scene name"), "blur" if kind == blur else "sharp",
                                _safe(frame, "frame name"))
            if dest in dests:
                raise LayoutError(f"{source}: {name} and {dests[dest]} would both become {dest}; "
                                  "the source holds two copies of GOPRO: point --source at one")
            dests[dest] = name
            jobs.append((name, dest))
        if not jobs:
            raise LayoutError(f"{source}: no {{train,test}}/<scene>/{{{blur},sharp}}/*.png frames found; expected "
                              "GOPRO_Large.zip or its extracted folder (GOPRO_Large/train/GOPR0372_07_00/...)")
        summary = Summary("gopro", out)
        _place_all(src, jobs, mode, summary)
        if skipped:
            summary.notes.append(f"{skipped} non-PNG files in blur/sharp folders were not copied")
        if blur != "blur":
            summary.notes.append(f"blur/ holds the {blur} frames")
    finally:
        src.close()
    checked = check_gopro(out, decode=decode)
    checked.notes = summary.notes + checked.notes
    return checked


def check_gopro(root: str, decode: bool = False) -> Summary:
    from PIL import Image

    splits = [s for s in GOPRO_SPLITS if os.path.isdir(os.path.join(root, s))]
    if not splits:
        raise LayoutError(f"{root}: no train/ or test/ folder; expected {root}/{{train,test}}/<scene>/"
                          "{blur,sharp}/*.png; lay it out with `prepare_dataset.py gopro`")
    summary = Summary("gopro", root)
    for split in GOPRO_SPLITS:
        if split not in splits:
            summary.add("missing_split", f"{split}/ (the pipeline needs train/ and test/ (eval))")
            continue
        scenes = sorted(d for d in os.listdir(os.path.join(root, split))
                        if os.path.isdir(os.path.join(root, split, d)))
        pairs = sharp_only = 0
        for scene in scenes:
            rel = f"{split}/{scene}"
            if sharp_only_scene(os.listdir(os.path.join(root, rel))):  # frames Transform blurs synthetically
                names = sorted(os.listdir(os.path.join(root, rel, "sharp")))
                bad = _check_files(root, [f"{rel}/sharp/{f}" for f in names], decode, summary)
                sharp_only += len(names) - len(bad)
                continue
            frames = {}
            for kind in ("blur", "sharp"):
                folder = os.path.join(root, split, scene, kind)
                if not os.path.isdir(folder):
                    summary.add("missing_folder", f"{rel}/{kind}/")
                frames[kind] = set(os.listdir(folder)) if os.path.isdir(folder) else set()
            paired, unpaired = pair_frames(frames["blur"], frames["sharp"])
            for kind, f in unpaired:
                summary.add("unpaired", f"{rel}/{kind}/{f}")
            rels = [f"{rel}/{kind}/{f}" for _, b, s in paired for kind, f in (("blur", b), ("sharp", s))]
            bad = _check_files(root, rels, decode, summary)
            for stem, b, s in paired:
                if f"{rel}/blur/{b}" in bad or f"{rel}/sharp/{s}" in bad:
                    continue
                with Image.open(os.path.join(root, rel, "blur", b)) as bi, \
                        Image.open(os.path.join(root, rel, "sharp", s)) as si:
                    if bi.size != si.size:
                        summary.add("size_mismatch", f"{rel}/{{blur,sharp}}/{stem} ({bi.size} vs {si.size})")
                        continue
                pairs += 1
        summary.counts[f"{split} scenes"] = len(scenes)
        summary.counts[f"{split} pairs"] = pairs
        if sharp_only:
            summary.counts[f"{split} sharp-only frames"] = sharp_only
    got = {s: (summary.counts.get(f"{s} scenes"), summary.counts.get(f"{s} pairs")) for s in GOPRO_SPLITS}
    if got == GOPRO_OFFICIAL:
        summary.notes.append("scene and pair counts match GOPRO_Large")
    else:
        summary.notes.append("a subset of GOPRO_Large (official: " +
                             ", ".join(f"{s} {n} scenes / {p} pairs" for s, (n, p) in GOPRO_OFFICIAL.items()) + ")")
    return summary


# -- tiles ---------------------------------------------------------------------------------------------

def _image_files(sources: list) -> list:
    files = []
    for src in sources:
        if os.path.isdir(src):
            for d, _, names in sorted(os.walk(src)):
                files += [os.path.join(d, n) for n in sorted(names) if is_image_name(n)]
        elif os.path.isfile(src):
            files.append(src)
        else:
            raise LayoutError(f"tiles: source {src!r} is neither a file nor a folder")
    return files


def _tile_starts(length: int, tile: int, stride: int) -> range:
    """Tile offsets from 0 in steps of `stride`; the remainder at the far edge is dropped."""
    return range(0, length - tile + 1, stride)


def _check_tiling(tile: int, stride: int | None) -> int:
    if tile < 8:
        raise LayoutError(f"tiles: --tile must be at least 8 pixels, got {tile}")
    stride = stride or tile
    if not 0 < stride <= tile:
        raise LayoutError(f"tiles: --stride must be in [1, --tile], got {stride}")
    return stride


def _save_tiles(im, stem: str, out: str, tile: int, stride: int) -> int:
    w, h = im.size
    for y in _tile_starts(h, tile, stride):
        for x in _tile_starts(w, tile, stride):
            im.crop((x, y, x + tile, y + tile)).save(os.path.join(out, f"{stem}_y{y:04d}_x{x:04d}.png"))
    return len(_tile_starts(h, tile, stride)) * len(_tile_starts(w, tile, stride))


def layout_tiles(sources: list, out: str, tile: int, stride: int | None = None) -> Summary:
    """Cuts every source image into `tile` squares every `stride` pixels (default: non-overlapping; from
    the top-left, the remainder at the right and bottom edges dropped) written as RGB PNGs. Names carry
    the source's stem, its folder when two sources share a stem, and the tile's position, so the result
    is reproducible."""
    stride = _check_tiling(tile, stride)
    from PIL import Image

    files = _image_files(sources)
    if not files:
        raise LayoutError(f"tiles: no images under {sources}")
    summary = Summary("tiles", out)
    os.makedirs(out, exist_ok=True)
    stems = {}
    for f in files:
        stems.setdefault(os.path.splitext(os.path.basename(f))[0], []).append(f)
    written = 0
    for f in files:
        stem = os.path.splitext(os.path.basename(f))[0]
        if len(stems[stem]) > 1:
            stem = f"{os.path.basename(os.path.dirname(os.path.abspath(f)))}_{stem}"
        stem = re.sub(r"[^\w.+-]", "_", stem)
        try:
            with Image.open(f) as im:
                im = im.convert("RGB")
        except (OSError, ValueError) as e:
            summary.add("not_image", f"{f} ({e})")
            continue
        w, h = im.size
        if w < tile or h < tile:
            summary.add("too_small", f"{f} ({w}x{h} < {tile})")
            continue
        written += _save_tiles(im, stem, out, tile, stride)
    summary.counts["source images"] = len(files)
    summary.counts[f"tiles {tile}x{tile}"] = written
    return summary


def layout_pair_tiles(blur_dir: str, sharp_dir: str, out: str, tile: int, stride: int | None = None,
                      names: list | None = None) -> Summary:
    """Blur/sharp frames (paired by file stem, as the pipeline pairs them) cut into aligned tiles: a scene
    folder `out` with blur/ and sharp/ of the gopro layout. `names`: only these frames (e.g. keep others
    out of training to evaluate on them)."""
    stride = _check_tiling(tile, stride)
    from PIL import Image

    listed = {kind: sorted(n for n in os.listdir(d) if is_image_name(n)) if os.path.isdir(d) else []
              for kind, d in (("blur", blur_dir), ("sharp", sharp_dir))}
    if names:
        listed = {kind: [n for n in found if n in names or os.path.splitext(n)[0] in names]
                  for kind, found in listed.items()}
    pairs, unpaired = pair_frames(listed["blur"], listed["sharp"])
    if not pairs:
        raise LayoutError(f"pair-tiles: no frames of the same name in {blur_dir} and {sharp_dir}")
    summary = Summary("pair tiles", out)
    for kind, f in unpaired:
        summary.add("unpaired", f"{kind}/{f}")
    written = 0
    for stem, b, s in pairs:
        with Image.open(os.path.join(blur_dir, b)) as bi, Image.open(os.path.join(sharp_dir, s)) as si:
            blur, sharp = bi.convert("RGB"), si.convert("RGB")
        if blur.size != sharp.size:
            summary.add("size_mismatch", f"{stem} ({blur.size} vs {sharp.size})")
            continue
        safe = re.sub(r"[^\w.+-]", "_", stem)
        for kind, im in (("blur", blur), ("sharp", sharp)):
            os.makedirs(os.path.join(out, kind), exist_ok=True)
            count = _save_tiles(im, safe, os.path.join(out, kind), tile, stride)
        written += count
    summary.counts["pairs"] = len(pairs)
    summary.counts[f"tile pairs {tile}x{tile}"] = written
    return summary


def check_tiles(root: str, decode: bool = False) -> Summary:
    summary = Summary("tiles", root)
    rels = sorted(n for n in os.listdir(root) if is_image_name(n)) if os.path.isdir(root) else []
    if not rels:
        raise LayoutError(f"tiles: no images in {root}")
    bad = _check_files(root, rels, decode, summary)
    summary.counts["tiles"] = len(rels) - len(bad)
    return summary


# -- command line ---------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="prepare_dataset.py", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="dataset", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", required=True, help="the data root to write (config key data.root)")
    common.add_argument("--mode", choices=MODES, default="copy",
                        help="how files get from an extracted folder into --out (zip archives are extracted)")
    common.add_argument("--check-only", action="store_true", help="only check an existing layout at --out")
    common.add_argument("--verify", action="store_true", help="also decode every image (slow on the full sets)")
    common.add_argument("--strict", action="store_true", help="exit 1 when the check finds any problem")
    c = sub.add_parser("celeba", parents=[common], help="CelebA aligned faces (SRGAN preset srgan-celeba)")
    c.add_argument("--images", help="img_align_celeba.zip or its extracted folder")
    c.add_argument("--partition", help="list_eval_partition.txt (or .csv); default: found in or beside --images")
    c.add_argument("--no-partition", action="store_true", help="no partition file: the pipeline splits by hash")
    g = sub.add_parser("gopro", parents=[common], help="GOPRO_Large pairs (DeblurGAN preset deblurgan-gopro)")
    g.add_argument("--source", help="GOPRO_Large.zip or its extracted folder")
    g.add_argument("--blur", choices=("blur", "blur_gamma"), default="blur",
                   help="which blurred frames become blur/ (DeepDeblur ships linear and gamma-corrected ones)")
    t = sub.add_parser("tiles", parents=[common], help="square tiles of any photographs (folder layout, e.g. "
                                                       "preset srresnet-psnr)")
    t.add_argument("--source", nargs="+", help="image files and/or folders (searched recursively)")
    t.add_argument("--tile", type=int, default=128, help="tile edge in pixels (use the preset's data.crop_size)")
    t.add_argument("--stride", type=int, default=None, help="pixels between tiles (default: the tile: no overlap)")
    pt = sub.add_parser("pair-tiles", parents=[common],
                        help="aligned tiles of blur/sharp frame pairs: one gopro-layout scene folder (--out)")
    pt.add_argument("--blur", required=True, help="folder of blurred frames")
    pt.add_argument("--sharp", required=True, help="folder of sharp frames of the same names")
    pt.add_argument("--frames", nargs="+", default=None, help="only these frames (file names or stems)")
    pt.add_argument("--tile", type=int, default=256, help="tile edge in pixels (use the preset's data.crop_size)")
    pt.add_argument("--stride", type=int, default=None, help="pixels between tiles (default: the tile)")
    return p


def run(args: argparse.Namespace) -> Summary:
    if args.dataset == "tiles":
        if args.check_only:
            return check_tiles(args.out, decode=args.verify)
        if not args.source:
            raise LayoutError("tiles needs --source (image files or folders), or --check-only")
        return layout_tiles(args.source, args.out, args.tile, args.stride)
    if args.dataset == "pair-tiles":
        return layout_pair_tiles(args.blur, args.sharp, args.out, args.tile, args.stride, args.frames)
    if args.dataset == "celeba":
        if args.check_only:
            return check_celeba(args.out, decode=args.verify)
        if not args.images:
            raise LayoutError("celeba needs --images (img_align_celeba.zip or its folder), or --check-only")
        return layout_celeba(args.images, args.out, partition=args.partition, mode=args.mode,
                             require_partition=not args.no_partition, decode=args.verify)
    if args.check_only:
        return check_gopro(args.out, decode=args.verify)
    if not args.source:
        raise LayoutError("gopro needs --source (GOPRO_Large.zip or its folder), or --check-only")
    return layout_gopro(args.source, args.out, blur=args.blur, mode=args.mode, decode=args.verify)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        summary = run(args)
    except LayoutError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(summary.format())
    print(f"run it: gan-restore run --preset {RUN_HINT[args.dataset]} --set data.root={os.path.abspath(args.out)}")
    return 1 if args.strict and summary.num_problems else 0


if __name__ == "__main__":
    sys.exit(main())

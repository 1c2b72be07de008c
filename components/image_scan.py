"""Image ingestion without Beam: find the images of a dataset layout, assign splits, check each file.

`components/image_example_gen.py` runs these functions inside its Beam executor; they are plain
Python (PIL, numpy, `tf.io.gfile` for local and cloud paths) so they are testable on their own.

Layouts (`data.layout`):
  folder  every non-hidden file below the root, recursively; split by a hash of the id.
  celeba  `img_align_celeba/*`; splits from `list_eval_partition.txt` (0 train, 1 eval, 2 test)
          when present, else by a hash of the id.
  gopro   `{train,test}/<scene>/{blur,sharp}/*`, blur and sharp paired by scene and file name;
          train/ -> train, test/ -> eval. Other folders (GOPRO_Large's `blur_gamma`) are ignored.

Files are recognised by content, not by extension: a text file in an image folder is rejected as
`not_image`, listed and counted, never silently dropped.
"""
from __future__ import annotations

import hashlib
import io
import posixpath
import warnings
from typing import Dict, Iterable, List, NamedTuple, Tuple

import tensorflow as tf

from components import png_check
from models import images

TRAIN, EVAL, TEST = "train", "eval", "test"
CELEBA_IMAGES = "img_align_celeba"
CELEBA_PARTITION = "list_eval_partition.txt"
CELEBA_SPLITS = {"0": TRAIN, "1": EVAL, "2": TEST}
GOPRO_SPLITS = {"train": TRAIN, "test": EVAL}
GOPRO_FRAMES = ("blur", "sharp")

# Reasons a file (or a GOPRO pair) is rejected; each is a Beam counter `rejected_<reason>`.
REASONS = (
    "empty",  # zero bytes
    "not_image",  # no image format recognised (text, archives, ...)
    "corrupt",  # recognised, but the pixel data does not decode
    "truncated",  # the file ends before the pixel data does
    "too_small",  # shorter side below data.min_size (0: the crop size)
    "too_large",  # more pixels than data.max_pixels, judged from the header before decoding
    "unpaired",  # GOPRO blur frame without its sharp frame, or the reverse
    "size_mismatch",  # GOPRO blur and sharp frames of different sizes
    "unpartitioned",  # CelebA image missing from list_eval_partition.txt
    "duplicate_id",  # two files map to one id (a.png and a.jpg in one folder)
    "unreadable",  # the file system refused to read it
)


class Candidate(NamedTuple):
    """One example to be: an image (or a GOPRO sharp/blur pair) and where it goes."""

    id: str
    split: str
    scene: str
    image: str  # path relative to the root (the sharp frame for GOPRO)
    blur: str | None = None  # GOPRO only


class Reject(NamedTuple):
    path: str  # relative to the data root
    reason: str
    detail: str = ""


class Listing(NamedTuple):
    """What a scan of the data root found: candidates, rejects known before decoding, split names."""

    root: str
    candidates: List[Candidate]
    rejects: List[Reject]
    split_names: List[str]


class Rejected(Exception):
    """A file that cannot become an example; carries the reason for counters and rejects.tsv."""

    def __init__(self, reason: str, detail: str = ""):
        assert reason in REASONS, reason
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


# -- splits ----------------------------------------------------------------------------------------


def hash_split(example_id: str, train_ratio: float) -> str:
    """train or eval, deterministically from the id (stable across runs, machines and file order)."""
    h = int.from_bytes(hashlib.sha256(example_id.encode("utf-8")).digest()[:8], "big")
    return TRAIN if h / 2.0**64 < train_ratio else EVAL


def read_partition(text: str, source: str = CELEBA_PARTITION) -> Dict[str, str]:
    """`list_eval_partition.txt` ("000001.jpg 0" per line) as {file name: split}.

    A malformed file is a configuration error (it would silently move images between splits), so
    it raises with the line number rather than being skipped.
    """
    out = {}
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in CELEBA_SPLITS:
            raise ValueError(f"{source}:{n}: expected '<file name> <0|1|2>', got {line.strip()!r}")
        out[parts[0]] = CELEBA_SPLITS[parts[1]]
    return out


# -- listing ---------------------------------------------------------------------------------------


def scan(root: str, layout: str, train_ratio: float) -> Listing:
    """All candidates of a dataset root for `layout`, plus the rejects visible from names alone."""
    if not root:
        raise ValueError("data.root is empty: set it to the folder that holds the images")
    if not tf.io.gfile.isdir(root):
        raise FileNotFoundError(f"data.root {root!r} is not a directory")
    if not 0.0 < train_ratio < 1.0:
        raise ValueError(f"data.train_ratio must be in (0, 1), got {train_ratio}")
    if layout == "folder":
        cands, rejects = _by_hash(_files_below(root, ""), train_ratio), []
        splits = [TRAIN, EVAL]
    elif layout == "celeba":
        cands, rejects, splits = _scan_celeba(root, train_ratio)
    elif layout == "gopro":
        cands, rejects = _scan_gopro(root)
        splits = [TRAIN, EVAL]
    else:
        raise ValueError(f"unknown data.layout {layout!r}")
    cands, dups = _drop_duplicate_ids(cands)
    if not cands:
        raise ValueError(f"no image files found under {root!r} for data.layout={layout!r} ({_layout_hint(layout)})")
    return Listing(root, cands, sorted(rejects + dups), splits)


def _layout_hint(layout: str) -> str:
    return {"folder": "any files below the root, recursively",
            "celeba": f"expected {CELEBA_IMAGES}/*.jpg",
            "gopro": "expected {train,test}/<scene>/{blur,sharp}/*.png"}[layout]


def _files_below(root: str, sub: str) -> List[str]:
    """Relative paths ('/'-separated) of the non-hidden files below root/sub, sorted."""
    top = posixpath.join(root, sub) if sub else root
    if not tf.io.gfile.isdir(top):
        return []
    out = []
    for dirpath, dirnames, filenames in tf.io.gfile.walk(top):
        rel_dir = posixpath.relpath(dirpath.replace("\\", "/"), root.rstrip("/"))
        if any(part.startswith(".") for part in rel_dir.split("/") if part != "."):
            continue
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        out.extend(posixpath.normpath(posixpath.join(rel_dir, f)) for f in filenames if not f.startswith("."))
    return sorted(out)


def _strip_ext(path: str) -> str:
    return posixpath.splitext(path)[0]


def _parent(path: str) -> str:
    parent = posixpath.dirname(path)
    return "" if parent in ("", ".") else parent


def _by_hash(paths: Iterable[str], train_ratio: float) -> List[Candidate]:
    return [Candidate(_strip_ext(p), hash_split(_strip_ext(p), train_ratio), _parent(p), p) for p in paths]


def _scan_celeba(root: str, train_ratio: float) -> Tuple[List[Candidate], List[Reject], List[str]]:
    if not tf.io.gfile.isdir(posixpath.join(root, CELEBA_IMAGES)):
        raise FileNotFoundError(f"data.layout=celeba: {root!r} has no {CELEBA_IMAGES}/ folder")
    paths = _files_below(root, CELEBA_IMAGES)
    part_path = posixpath.join(root, CELEBA_PARTITION)
    if not tf.io.gfile.exists(part_path):
        return _by_hash(paths, train_ratio), [], [TRAIN, EVAL]
    with tf.io.gfile.GFile(part_path, "r") as f:
        partition = read_partition(f.read(), part_path)
    cands, rejects = [], []
    for p in paths:
        split = partition.get(posixpath.basename(p))
        if split is None:
            rejects.append(Reject(p, "unpartitioned", f"not listed in {CELEBA_PARTITION}"))
        else:
            cands.append(Candidate(_strip_ext(p), split, _parent(p), p))
    return cands, rejects, [TRAIN, EVAL, TEST]


def _scan_gopro(root: str) -> Tuple[List[Candidate], List[Reject]]:
    if not any(tf.io.gfile.isdir(posixpath.join(root, d)) for d in GOPRO_SPLITS):
        raise FileNotFoundError(f"data.layout=gopro: {root!r} has neither train/ nor test/")
    cands, rejects = [], []
    for top, split in GOPRO_SPLITS.items():
        top_dir = posixpath.join(root, top)
        if not tf.io.gfile.isdir(top_dir):
            continue
        for scene in sorted(d.rstrip("/") for d in tf.io.gfile.listdir(top_dir)):
            if scene.startswith(".") or not tf.io.gfile.isdir(posixpath.join(top_dir, scene)):
                continue
            frames = {kind: _frames(root, f"{top}/{scene}/{kind}") for kind in GOPRO_FRAMES}
            for stem in sorted(set(frames["blur"]) | set(frames["sharp"])):
                blur, sharp = frames["blur"].get(stem), frames["sharp"].get(stem)
                if blur and sharp:
                    cands.append(Candidate(f"{scene}/{stem}", split, scene, sharp, blur))
                else:
                    missing = "sharp" if blur else "blur"
                    rejects.append(Reject(blur or sharp, "unpaired", f"no {missing} frame named {stem}.*"))
    return cands, rejects


def _frames(root: str, sub: str) -> Dict[str, str]:
    """{file stem: relative path} of the frames directly in root/sub."""
    return {posixpath.splitext(posixpath.basename(p))[0]: p
            for p in _files_below(root, sub) if _parent(p) == sub}


def _drop_duplicate_ids(cands: List[Candidate]) -> Tuple[List[Candidate], List[Reject]]:
    """Keep the first file (by path) of each id: ids key splits, seeds and reports downstream."""
    seen: Dict[str, str] = {}
    keep, dups = [], []
    for c in sorted(cands, key=lambda c: c.image):
        if c.id in seen:
            dups.append(Reject(c.image, "duplicate_id", f"id {c.id!r} already taken by {seen[c.id]}"))
        else:
            seen[c.id] = c.image
            keep.append(c)
    return keep, dups


# -- checking and normalising one file -------------------------------------------------------------


class CheckedImage(NamedTuple):
    data: bytes  # the original bytes (8-bit RGB PNG/JPEG) or a PNG re-encoding as 8-bit RGB
    height: int
    width: int
    converted: bool


def check_image(data: bytes, min_size: int, max_pixels: int) -> CheckedImage:
    """Check one encoded image and normalise it to 8-bit RGB; raises `Rejected`.

    The size limits are judged from the header before any pixel is decoded, so a decompression bomb
    costs a few hundred bytes of reading. Files kept as they are (8-bit RGB PNG/JPEG) must decode in
    Transform: PNGs are proved intact without decoding their pixels (`png_check`: chunk CRCs, the
    inflated image data, row filters), JPEGs are decoded by TensorFlow, the decoder Transform uses.
    PIL decodes the files it converts, and names the failure when TF cannot decode a JPEG.
    """
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise Rejected("empty", "0 bytes")
    try:
        with warnings.catch_warnings():
            # Our own max_pixels check below is the guard; PIL's warning would only add noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise Rejected("not_image", f"{len(data)} bytes, no known image format") from None
    except Image.DecompressionBombError as e:  # PIL's own limit (2x Image.MAX_IMAGE_PIXELS)
        raise Rejected("too_large", str(e)) from None
    except (OSError, SyntaxError, ValueError) as e:
        raise _decode_error(e) from None
    with im:
        width, height = im.size
        if width * height > max_pixels:
            raise Rejected("too_large", f"{width}x{height} = {width * height} pixels > data.max_pixels {max_pixels}")
        if min(width, height) < min_size:
            raise Rejected("too_small", f"{width}x{height}, shorter side < {min_size}")
        kept = _kept_format(im, data)
        if kept == "PNG":
            try:
                png_check.check(data)
            except png_check.Damaged as e:
                raise Rejected("truncated" if e.truncated else "corrupt", str(e)) from None
            return CheckedImage(data, height, width, converted=False)
        if kept == "JPEG":
            try:
                _tf_decode(tf.constant(data))
            except tf.errors.OpError as tf_error:
                _pil_load(im)  # raises with PIL's diagnosis (truncated, corrupt) when it has one
                raise Rejected("corrupt", f"TensorFlow cannot decode it: {tf_error.message}") from None
            return CheckedImage(data, height, width, converted=False)
        _pil_load(im)
        return CheckedImage(images.encode_png(images.to_rgb8(im)), height, width, converted=True)


@tf.function(input_signature=[tf.TensorSpec([], tf.string)])
def _tf_decode(data):
    return tf.shape(images.tf_decode_rgb8(data))


def _pil_load(im) -> None:
    try:
        im.load()
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, zlib.error, ...
        raise _decode_error(e) from None


def _decode_error(e: Exception) -> Rejected:
    msg = f"{type(e).__name__}: {e}"
    return Rejected("truncated" if "truncat" in msg.lower() else "corrupt", msg)


def _kept_format(im, data: bytes) -> str | None:
    """"PNG" or "JPEG" when the file already is what TF decodes to uint8 RGB unchanged (its bytes
    are kept), else None (it is converted)."""
    if im.mode != "RGB" or getattr(im, "is_animated", False):
        return None
    if im.format == "JPEG":
        return "JPEG"
    # PIL opens 16-bit RGB PNGs as 8-bit "RGB" too: read bit depth and colour type from the IHDR.
    if im.format == "PNG" and data[:8] == png_check.SIGNATURE and data[24] == 8 and data[25] == 2:
        return "PNG"
    return None


def read_bytes(root: str, rel_path: str) -> bytes:
    try:
        with tf.io.gfile.GFile(posixpath.join(root, rel_path), "rb") as f:
            return f.read()
    except (OSError, tf.errors.OpError) as e:
        raise Rejected("unreadable", f"{type(e).__name__}: {e}") from None


def check_candidate(root: str, cand: Candidate, min_size: int, max_pixels: int
                    ) -> Tuple[CheckedImage, CheckedImage | None]:
    """Check a candidate's image (and blur frame); raises `Rejected` with the failing file's path."""
    image = _check_file(root, cand.image, min_size, max_pixels)
    if cand.blur is None:
        return image, None
    blur = _check_file(root, cand.blur, min_size, max_pixels)
    if (blur.height, blur.width) != (image.height, image.width):
        raise RejectedPath(cand.blur, Rejected(
            "size_mismatch", f"blur {blur.width}x{blur.height} vs sharp {image.width}x{image.height}"))
    return image, blur


class RejectedPath(Exception):
    """A `Rejected` with the path of the file that caused it (one of a pair)."""

    def __init__(self, path: str, rejected: Rejected):
        super().__init__(f"{path}: {rejected}")
        self.reject = Reject(path, rejected.reason, rejected.detail)


def _check_file(root: str, rel_path: str, min_size: int, max_pixels: int) -> CheckedImage:
    try:
        return check_image(read_bytes(root, rel_path), min_size, max_pixels)
    except Rejected as r:
        raise RejectedPath(rel_path, r) from None


# -- rejects.tsv -----------------------------------------------------------------------------------

REJECTS_FILE = "rejects.tsv"
REJECTS_HEADER = "path\treason\tdetail"


def format_rejects(rejects: Iterable[Reject]) -> str:
    """rejects.tsv text: a header line, then one sorted line per reject (tabs/newlines in details
    become spaces so every line stays three columns)."""
    clean = lambda s: " ".join(str(s).split())
    lines = [REJECTS_HEADER] + ["\t".join((r.path, r.reason, clean(r.detail))) for r in sorted(rejects)]
    return "\n".join(lines) + "\n"


def parse_rejects(text: str) -> List[Reject]:
    rows = text.splitlines()
    if not rows or rows[0] != REJECTS_HEADER:
        raise ValueError(f"not a {REJECTS_FILE} file (header {rows[:1]})")
    return [Reject(*line.split("\t", 2)) for line in rows[1:] if line]


# -- input fingerprint (caching) -------------------------------------------------------------------


def tree_fingerprint(root: str) -> str:
    """Names, sizes and mtimes of every file below root, in the style of TFX's split fingerprints.

    TFX's FileBasedExampleGen fingerprints one glob level (`root/*`); images in sub-folders would
    then change without invalidating the cached ExampleGen run.
    """
    paths = _files_below(root, "")
    names = hashlib.sha256("\n".join(paths).encode("utf-8")).hexdigest()[:16]
    total = xor_m = sum_m = 0
    for p in paths:
        st = tf.io.gfile.stat(posixpath.join(root, p))
        mtime = int(st.mtime_nsec // 1_000_000_000)
        total, xor_m, sum_m = total + st.length, xor_m ^ mtime, sum_m + mtime
    return (f"tree:{root},num_files:{len(paths)},names:{names},total_bytes:{total},"
            f"xor_checksum:{xor_m},sum_checksum:{sum_m}")

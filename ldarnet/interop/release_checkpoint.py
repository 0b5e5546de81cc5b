"""Import the authors' released checkpoint (``model_ckpt_110m.pt``) into this package's format.

The release saves a ``torch.save`` dict (spec 3.8): ``model`` (state dict), ``opt``
(AdamW state), ``config`` (``dataclasses.asdict`` of its config object, with nested
``ssm_cfg``/``attn_cfg`` dicts), ``step`` (the epoch) and ``args`` (the CLI arguments).
This module turns such a file into a directory that :func:`load_pretrained` reads:
``model.safetensors`` plus ``config.json`` (``model_config`` + provenance).

Safety: the file is read ONLY with ``torch.load(..., weights_only=True)``, which
restores tensors and plain containers and refuses every other pickled object. A file
that needs more is refused: unpickling arbitrary objects can run arbitrary code.

Key mapping (the module trees are the same except the name of the top-level stage):
the release calls it ``backbone.``, this package ``hierarchy.``; every name below it
(``encoder``, ``main_network``, ``decoder``, ``routing_module.q_proj_layer``,
``residual_proj``, ``pad_dimension``, ``layers.<i>.norm1/mixer/norm2/mlp``,
``mixer.fwd/bwd.in_proj/conv1d/dt_bias/A_log/D/norm/out_proj``, ``Wqkv``, ``fc1/fc2``,
``rmsnorm``) is identical. The release stores the tied BiMamba-2 projections under both
``mixer.fwd.`` and ``mixer.bwd.``; both copies are checked to be equal and the
parameter is stored once. The mapping was checked against the release's module
definitions and spec 3.8, not against the 1.53 GB file itself (see docs/interop.md).
"""

from __future__ import annotations

import json
import re
import zipfile
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ldarnet import __version__
from ldarnet.foundation.checksum import file_sha256
from ldarnet.foundation.errors import MissingInputError
from ldarnet.interop.errors import InteropError
from ldarnet.interop.outdir import atomic_directory, check_target
from ldarnet.model.config import REVERSE_PADDING_MODES, ModelConfig, config_from_dict
from ldarnet.model.network.ldarnet import LDARNet
from ldarnet.model.pretrained import CONFIG_NAME, WEIGHTS_NAME, load_pretrained
from ldarnet.model.weights import save_model_file

RELEASE_ROOT = "backbone."
OUR_ROOT = "hierarchy."
# Top-level names that are the same in both trees.
SHARED_ROOTS = ("embeddings.", "lm_head.")
# Rotary frequency tables are derived from the config; the release marks them
# non-persistent (spec 3.8), but an older save could contain them: they are dropped.
DERIVED_BUFFER = re.compile(r"\.rotary_emb\.(inv_freq|_cos_cached|_sin_cached|"
                            r"_cos_k_cached|_sin_k_cached)$")

RELEASE_CONFIG_FIELDS = ("arch_layout", "d_model", "d_intermediate", "vocab_size", "ssm_cfg",
                         "attn_cfg", "tie_embeddings", "mode", "pad_token_id", "mask_token_id")
# Mamba-2 keyword arguments of the release's ``ssm_cfg`` that this package models
# (its SSMConfig dataclass has the first four; the rest are mamba-ssm arguments that
# a modified config could carry and that mean the same thing here).
SSM_FIELDS = ("d_state", "d_conv", "expand", "chunk_size", "headdim", "ngroups",
              "A_init_range", "dt_min", "dt_max", "dt_init_floor")
ATTN_FIELDS = ("num_heads", "rotary_emb_dim", "window_size")
MAX_LISTED = 5


# ------------------------------------------------------------------------------ reading
def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_LISTED])
    return shown + (f", ... ({len(names)} in all)" if len(names) > MAX_LISTED else "")


def _weights_only_reason(err: BaseException) -> str | None:
    """What a ``weights_only`` refusal refused (the offending global), or None for other errors.

    torch words the refusal differently across versions (a ``WeightsUnpickler error:``
    line; "Trying to load unsupported GLOBAL posix.system whose module posix is
    blocked"; under torch 2.13 sometimes an empty reason, printed as "()"): the global's
    name is looked for anywhere in the text, and a reason is never left empty.
    """
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err))
    if "Weights only load failed" not in text and "WeightsUnpickler" not in text:
        return None
    found = re.search(r"GLOBAL ([\w.]+)", text)
    if found:
        blocked = re.search(r"module ([\w.]+) is blocked", text)
        return (f"the pickle needs {found.group(1)}"
                + (f", from the blocked module {blocked.group(1)}" if blocked else ""))
    match = re.search(r"WeightsUnpickler error: ([^\n]*)", text)
    reason = (match.group(1) if match else "").split(" Please use")[0].strip()
    if reason.strip("() ."):
        return reason
    return f"torch.load refused it ({type(err).__name__}) without naming the object"


def _looks_like_torch_save(path: Path) -> bool:
    """A ``torch.save`` file: a zip archive (current format) or a pickle (legacy format)."""
    if zipfile.is_zipfile(path):
        return True
    with open(path, "rb") as fh:
        return fh.read(1) == b"\x80"  # pickle protocol >= 2 opcode


def load_release_payload(path: str | Path) -> dict[str, Any]:
    """The dict saved in a release checkpoint, loaded with ``weights_only=True`` only."""
    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"checkpoint {path} does not exist; download model_ckpt_110m.pt "
                                "from the HuggingFace repository darlednik/LDARNet-110M")
    if not path.is_file():
        raise InteropError(f"{path} is not a file; pass the release's .pt checkpoint file")
    if not _looks_like_torch_save(path):
        raise InteropError(
            f"{path} is not a PyTorch checkpoint (neither a torch.save zip archive nor a "
            "legacy pickle); pass the release's model_ckpt_110m.pt, and re-download it if it "
            "may be truncated or was saved as an HTML error page"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for non-checkpoint bytes
        reason = _weights_only_reason(err)
        if reason is not None:
            raise InteropError(
                f"{path}: refused: the file contains a pickled object that is not a tensor or "
                f"a plain container ({reason}). ldarnet loads checkpoints only with "
                "torch.load(weights_only=True) and never unpickles arbitrary objects, because "
                "unpickling can run arbitrary code. The authors' released file holds only "
                "tensors and plain data: download model_ckpt_110m.pt again from HuggingFace "
                "darlednik/LDARNet-110M and import that file"
            ) from None
        raise InteropError(
            f"{path} is not a PyTorch checkpoint (torch.load failed: "
            f"{type(err).__name__}: {str(err)[:200]}); pass the release's model_ckpt_110m.pt "
            "(a torch.save file), and re-download it if it may be truncated"
        ) from None
    if not isinstance(payload, dict):
        raise InteropError(
            f"{path} holds a {type(payload).__name__}, not the release's checkpoint dict "
            "(keys model, opt, config, step, args); pass model_ckpt_110m.pt"
        )
    state = payload.get("model")
    if not isinstance(state, Mapping) or not state:
        raise InteropError(
            f"{path} has no 'model' state dict (keys present: {sorted(map(str, payload))}); "
            "pass a release checkpoint saved by its pretrain.py (model_ckpt_110m.pt or epNN.pt)"
        )
    bad = [str(k) for k, v in state.items() if not isinstance(k, str) or
           not isinstance(v, torch.Tensor)]
    if bad:
        raise InteropError(f"{path}: 'model' is not a state dict of named tensors "
                           f"(offending entries: {_listing(bad)})")
    if not isinstance(payload.get("config"), Mapping):
        raise InteropError(
            f"{path} has no embedded 'config' (keys present: {sorted(map(str, payload))}), so "
            "the architecture cannot be rebuilt from it. The release's periodic "
            "last_checkpoint_one_stage.pt has only model/opt; import the end-of-epoch file "
            "instead (model_ckpt_110m.pt from darlednik/LDARNet-110M, or epNN.pt)"
        )
    return payload


# ------------------------------------------------------------------------ config mapping
def _scalar_ssm(name: str, value: Any, where: str) -> Any:
    """The release allows per-stage lists in ``ssm_cfg``; this package has one value."""
    if isinstance(value, list | tuple) and name != "A_init_range":
        if len(set(map(repr, value))) != 1:
            raise InteropError(
                f"{where}: ssm_cfg.{name}={list(value)} differs between stages; this package "
                "uses one Mamba-2 setting for every stage, so this checkpoint cannot be imported"
            )
        return value[0]
    return value


def model_config_from_release(
    release: Mapping[str, Any],
    name: str = "ldarnet-release",
    reverse_padding: str = "exact",
    target_ratio: list[float] | None = None,
    where: str = "release config",
) -> ModelConfig:
    """This package's :class:`ModelConfig` for a release ``config`` dict (spec 1.1).

    Field names map one to one except ``ssm_cfg`` → ``ssm`` and ``attn_cfg`` → ``attn``;
    ``tie_embeddings`` is accepted (both matrices are loaded untied, same outputs) and
    ``mode`` must be ``"mlm"`` (the release's causal path is not implemented either).
    An unknown key is refused: it could change the architecture without changing any
    tensor shape. ``reverse_padding`` and ``target_ratio`` are this package's own
    settings (padding handling of the reverse scan; ratio-loss target N).
    """
    unknown = sorted(set(release) - set(RELEASE_CONFIG_FIELDS))
    if unknown:
        raise InteropError(f"{where}: unknown field(s) {unknown}; this importer knows "
                           f"{list(RELEASE_CONFIG_FIELDS)} (spec 1.1). A newer release format "
                           "needs an updated importer")
    mode = release.get("mode", "mlm")
    if mode != "mlm":
        raise InteropError(f"{where}: mode={mode!r}; only masked-LM ('mlm') checkpoints exist "
                           "in the release and can be imported")
    if reverse_padding not in REVERSE_PADDING_MODES:
        raise InteropError(f"reverse_padding={reverse_padding!r}; choose one of "
                           f"{', '.join(REVERSE_PADDING_MODES)}")
    ssm_in = release.get("ssm_cfg") or {}
    attn_in = release.get("attn_cfg") or {}
    if not isinstance(ssm_in, Mapping) or not isinstance(attn_in, Mapping):
        raise InteropError(f"{where}: ssm_cfg and attn_cfg must be mappings")
    for section, known, values in (("ssm_cfg", SSM_FIELDS, ssm_in),
                                   ("attn_cfg", ATTN_FIELDS, attn_in)):
        extra = sorted(set(values) - set(known))
        if extra:
            raise InteropError(f"{where}: unknown {section} field(s) {extra}; supported: "
                               f"{list(known)}")
    ssm = {k: _scalar_ssm(k, ssm_in[k], where) for k in SSM_FIELDS if k in ssm_in}
    # The release's SSMConfig has no headdim/ngroups: mamba-ssm 2.2.5 defaults apply (1.1).
    ssm.setdefault("headdim", 64)
    ssm.setdefault("ngroups", 1)
    data: dict[str, Any] = {
        "name": name,
        "arch_layout": release.get("arch_layout"),
        "d_model": release.get("d_model"),
        "d_intermediate": release.get("d_intermediate"),
        "vocab_size": release.get("vocab_size", 7),
        "pad_token_id": release.get("pad_token_id", 6),
        "mask_token_id": release.get("mask_token_id", 5),
        "ssm": ssm,
        "attn": {k: attn_in[k] for k in ATTN_FIELDS if k in attn_in},
        "routing": {"boundaries": "learned", "target_ratio": target_ratio or [4.0]},
        "reverse_padding": reverse_padding,
    }
    missing = [k for k in ("arch_layout", "d_model", "d_intermediate") if data[k] is None]
    if missing:
        raise InteropError(f"{where}: missing required field(s) {missing}")
    return config_from_dict(data, source=where)


def target_ratio_from_args(args: Any) -> tuple[list[float] | None, str]:
    """The ratio-loss N of the release's ``--num_bytes_per_token`` (only used for training)."""
    if isinstance(args, Mapping) and "num_bytes_per_token" in args:
        raw = args["num_bytes_per_token"]
        try:
            values = [float(v) for v in str(raw).split(",") if v.strip()]
        except ValueError:
            values = []
        if values and all(v > 1 for v in values):
            return values, f"target_ratio {values} from the release's --num_bytes_per_token"
    return None, "target_ratio 4 (the release default; args did not give num_bytes_per_token)"


# --------------------------------------------------------------------- state-dict mapping
def release_name_to_ours(key: str) -> str | None:
    """This package's parameter name for a release state-dict key (None: not a model key)."""
    if key.startswith(RELEASE_ROOT):
        return OUR_ROOT + key[len(RELEASE_ROOT):]
    if key.startswith(SHARED_ROOTS):
        return key
    return None


def our_name_to_release(key: str) -> str:
    """The release's name for one of this package's state-dict keys (the inverse map)."""
    return RELEASE_ROOT + key[len(OUR_ROOT):] if key.startswith(OUR_ROOT) else key


def tied_groups(model: torch.nn.Module) -> list[list[str]]:
    """State-dict names that refer to one shared tensor (BiMamba-2 ``fwd``/``bwd`` projections)."""
    by_tensor: dict[int, list[str]] = defaultdict(list)
    for key, tensor in model.state_dict(keep_vars=True).items():
        by_tensor[id(tensor)].append(key)
    return [names for names in by_tensor.values() if len(names) > 1]


def map_state_dict(
    state: Mapping[str, torch.Tensor], model: LDARNet, where: str = "checkpoint"
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Rename the release's ``state`` to ``model``'s names and check it fits exactly.

    Returns the mapped state dict (every key of ``model.state_dict()``, tied names
    included) and a report (counts, dropped keys, verified tied pairs). Every
    inconsistency is one :class:`InteropError`: unknown or missing keys, shape
    mismatches, and tied copies that differ (which would mean the file was not written
    by the release's tied BiMamba-2, and loading it would silently drop one copy).
    """
    ours = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    dropped: list[str] = []
    for key, tensor in state.items():
        if DERIVED_BUFFER.search(key):
            dropped.append(key)
            continue
        name = release_name_to_ours(key)
        if name is None or name not in ours:
            unexpected.append(key)
            continue
        mapped[name] = tensor
    missing = sorted(our_name_to_release(k) for k in ours if k not in mapped)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} key(s): {_listing(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} key(s): {_listing(sorted(unexpected))}")
        raise InteropError(
            f"{where}: the state dict does not fit the architecture of its embedded config "
            f"({'; '.join(parts)}). The file is not an LDARNet release checkpoint of this "
            "layout, or it was modified; re-download model_ckpt_110m.pt"
        )
    shapes = [f"{our_name_to_release(k)}: file {tuple(mapped[k].shape)}, config "
              f"{tuple(v.shape)}" for k, v in ours.items() if mapped[k].shape != v.shape]
    if shapes:
        raise InteropError(f"{where}: {len(shapes)} tensor shape(s) do not match the embedded "
                           f"config: {_listing(shapes)}; the config and weights disagree, so "
                           "the file cannot be imported")
    not_float = [our_name_to_release(k) for k, v in ours.items()
                 if v.is_floating_point() and not mapped[k].is_floating_point()]
    if not_float:
        raise InteropError(f"{where}: non-floating-point tensor(s) where weights are expected: "
                           f"{_listing(not_float)}")
    tied = tied_groups(model)
    for names in tied:
        first = mapped[names[0]]
        for other in names[1:]:
            if not torch.equal(first, mapped[other]):
                diff = (first.double() - mapped[other].double()).abs().max().item()
                raise InteropError(
                    f"{where}: the tied BiMamba-2 copies {our_name_to_release(names[0])} and "
                    f"{our_name_to_release(other)} differ (max |difference| {diff:.3g}); the "
                    "release shares these projections between directions, so equal copies are "
                    "required. The file was modified or not written by the release"
                )
    dtypes = sorted({str(t.dtype) for t in mapped.values()})
    report = {
        "release_keys": len(state),
        "mapped_keys": len(mapped),
        "unique_tensors": len(mapped) - sum(len(g) - 1 for g in tied),
        "tied_groups_verified": len(tied),
        "dropped_derived_buffers": dropped,
        "source_dtypes": dtypes,
    }
    converted = {k: v.to(ours[k].dtype) for k, v in mapped.items()}
    return converted, report


# ------------------------------------------------------------------------------ import
def _json_safe(value: Any) -> Any:
    """Plain-JSON form of the release's ``config``/``args`` (tensors and the like as text)."""
    return json.loads(json.dumps(value, default=str))


def import_release_checkpoint(
    src: str | Path,
    out: str | Path,
    name: str = "ldarnet-release",
    reverse_padding: str = "exact",
    force: bool = False,
) -> dict[str, Any]:
    """Convert the release checkpoint ``src`` into the model directory ``out``.

    ``out`` receives ``model.safetensors`` and ``config.json`` (``model_config`` +
    ``source`` + ``conversion``) all at once or not at all. Before the directory is
    renamed into place it is loaded back with :func:`load_pretrained` and compared
    tensor by tensor with the converted model. Returns the written ``config.json``.
    """
    src, out = Path(src), Path(out)
    check_target(out, force)  # before reading 1.5 GB
    payload = load_release_payload(src)
    payload.pop("opt", None)  # optimiser moments are not needed; free them early
    where = str(src)
    ratio, ratio_note = target_ratio_from_args(payload.get("args"))
    cfg = model_config_from_release(payload["config"], name=name,
                                    reverse_padding=reverse_padding, target_ratio=ratio,
                                    where=f"{where}: config")
    with torch.random.fork_rng(devices=[]):  # the throw-away init must not move the caller's RNG
        model = LDARNet(cfg)
    state, report = map_state_dict(payload["model"], model, where=where)
    model.load_state_dict(state, strict=True)
    model.eval()
    step = payload.get("step")
    notes = [
        "state-dict prefix 'backbone.' renamed to 'hierarchy.'; all other names unchanged",
        f"{report['tied_groups_verified']} tied BiMamba-2 projection groups (mixer.fwd/bwd "
        "in_proj and out_proj) verified equal with torch.equal and stored once",
        ratio_note,
        f"reverse_padding={reverse_padding!r} ('exact' = this package's padding-exact reverse "
        "scan; 'release' = the release's whole-row flip, spec 1.4)",
        "the release's optimiser state ('opt') is not carried over",
    ]
    if report["dropped_derived_buffers"]:
        notes.append(f"dropped {len(report['dropped_derived_buffers'])} derived rotary buffers "
                     "(recomputed from the config)")
    if payload["config"].get("tie_embeddings"):
        notes.append("tie_embeddings=True in the release: embedding and LM head stored untied "
                     "with equal values")
    if report["source_dtypes"] != ["torch.float32"]:
        notes.append(f"source dtypes {report['source_dtypes']} converted to float32")
    n_params = sum(p.numel() for p in model.parameters())
    digest = file_sha256(src)
    download = _download_lock(src, digest)
    if download is not None:
        notes.append(f"downloaded from {download.get('url')} (commit {download.get('commit')}), "
                     "lock verified")
    document = {
        "model_config": cfg.to_dict(),
        "source": {
            "format": "LDARNet release checkpoint (torch.save dict: model, opt, config, step, "
                      "args; spec 3.8)",
            "file": src.name,
            "sha256": digest,
            "download": download,
            "bytes": src.stat().st_size,
            "release_step": step if isinstance(step, int | float | str) or step is None
            else str(step),
            "release_config": _json_safe(dict(payload["config"])),
            "release_args": _json_safe(payload.get("args")),
        },
        "conversion": {
            "tool": "ldarnet import-checkpoint",
            "ldarnet_version": __version__,
            "key_mapping": {RELEASE_ROOT: OUR_ROOT, "embeddings.": "embeddings.",
                            "lm_head.": "lm_head."},
            **{k: v for k, v in report.items() if k != "dropped_derived_buffers"},
            "dropped_keys": report["dropped_derived_buffers"],
            "notes": notes,
        },
        "summary": {"model": cfg.name, "parameters": n_params},
    }
    with atomic_directory(out, force=force) as tmp:
        save_model_file(model, tmp / WEIGHTS_NAME)
        (tmp / CONFIG_NAME).write_text(json.dumps(document, indent=2) + "\n")
        _verify_written(tmp, model)
    return document


def _download_lock(src: Path, sha256: str) -> dict[str, Any] | None:
    """Where the checkpoint was downloaded from (``<file>.json`` of ``ldarnet fetch-checkpoint``:
    repository, commit, URL), when that lock describes these very bytes."""
    lock = Path(f"{src}.json")
    try:
        data = json.loads(lock.read_text()) if lock.is_file() else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or data.get("sha256") != sha256:
        return None
    keys = ("host", "repo", "path", "revision", "commit", "url", "sha256", "fetched_utc")
    return {k: data[k] for k in keys if k in data}


def _verify_written(directory: Path, model: LDARNet) -> None:
    """Reload ``directory`` the way users will and require bit-identical tensors."""
    reloaded = load_pretrained(directory).state_dict()
    for key, tensor in model.state_dict().items():
        if not torch.equal(reloaded[key], tensor):
            raise InteropError(f"internal error: {key} changed when written to {WEIGHTS_NAME}; "
                               "please report this")


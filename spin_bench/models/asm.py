"""Action Structure Model (ASM) and its masked-action-modelling pre-training (SPIN stage 1).

Input sequence: M state tokens (an MLP of the state) followed by N sub-action tokens; the
token of slot i is E_i[a_i] from slot i's own embedding table of size bins_i + 1 (id bins_i
is that slot's [MASK]). All N tables live in one flat ``nn.Embedding`` with per-slot
offsets: E_i[t] = E[offset_i + t], offset_i = sum_{j<i} (bins_j + 1). No positional encoding
over sub-actions. Per-slot prediction heads (MLP, hidden 128) read the slot tokens' outputs.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from typing import Any, Callable, Optional, Sequence

import gin
import torch
import torch.nn.functional as F
from torch import nn

from spin_bench.atomic import atomic_torch_save, file_lock
from spin_bench.safe_load import UnreadableFileError, load_torch_file
from spin_bench.models.common import SlotHeads, adam_kwargs, apply_bins_mask, as_bins, bins_mask
from spin_bench.models.transformer import StateEncoder, TransformerEncoder, transformer_config

__all__ = [
    "ActionStructureModel", "ASMCheckpoint", "mam_corrupt", "masked_action_modelling_loss",
    "exact_match_rate", "state_only_nll", "asm_probe", "pretrain_asm", "asm_cache_key", "tensors_sha256",
]

# log_fn(step, total_steps, record): called with step 0 and record None before the first step,
# then with each log interval's record (step, mam_loss, masked_accuracy, wall_s, steps_per_s).
LogFn = Callable[[int, int, Optional[dict]], None]

# Bump when the meaning of a cached checkpoint changes (architecture code, objective, sampling).
CACHE_FORMAT_VERSION = 1


@gin.configurable
class ActionStructureModel(nn.Module):
    """p_theta(a_i | s, a_{-i}) for every slot i, from a (partially masked) joint action.

    logits[b, i] = Head_i(Enc([S(s_b); E_1[t_b1]; ...; E_N[t_bN]])[M + i]), t_bi in {0..bins_i}
    (t_bi = bins_i is [MASK]); invalid bins (j >= bins_i) are masked.
    """

    def __init__(self, obs_dim: int, bins: Sequence[int], d_model: int = 256, num_heads: int = 4,
                 num_blocks: int = 3, num_state_tokens: int = 1, dropout: float = 0.1, ffn_mult: int = 2,
                 head_hidden: int = 128, head_dropout: float = 0.1, state_hidden_mult: int = 2,
                 final_norm: bool = True):
        super().__init__()
        bins = as_bins(bins)
        self.bins, self.num_slots, self.max_bins = bins, len(bins), max(bins)
        self.num_state_tokens = num_state_tokens
        self.config: dict[str, Any] = dict(
            transformer_config(obs_dim, bins, d_model, num_heads, num_blocks, num_state_tokens, dropout,
                               ffn_mult, state_hidden_mult, final_norm),
            head_hidden=int(head_hidden), head_dropout=float(head_dropout))
        self.state_encoder = StateEncoder(obs_dim, d_model, num_state_tokens, state_hidden_mult)
        self.action_embedding = nn.Embedding(sum(b + 1 for b in bins), d_model)
        self.encoder = TransformerEncoder(d_model, num_heads, num_blocks, dropout, ffn_mult, final_norm)
        self.heads = SlotHeads(self.num_slots, d_model, head_hidden, self.max_bins, "gelu", head_dropout)
        b = torch.tensor(bins, dtype=torch.long)
        self.register_buffer("bins_tensor", b, persistent=False)
        self.register_buffer("token_offsets", torch.cumsum(b + 1, 0) - (b + 1), persistent=False)
        self.register_buffer("bins_mask", bins_mask(bins), persistent=False)

    @property
    def mask_token(self) -> torch.Tensor:
        """(N,) the [MASK] id of each slot (= bins_i)."""
        return self.bins_tensor

    def encode(self, obs: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Contextual slot embeddings: (B, obs_dim), (B, N) ids -> (B, N, d)."""
        x = torch.cat([self.state_encoder(obs), self.action_embedding(tokens + self.token_offsets)], dim=1)
        return self.encoder(x)[:, self.num_state_tokens:]

    def forward(self, obs: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Masked logits (B, N, max_bins)."""
        return apply_bins_mask(self.heads(self.encode(obs, tokens)), self.bins_mask)


def mam_corrupt(actions: torch.Tensor, bins: torch.Tensor, generator: Optional[torch.Generator] = None,
                mask_prob: float = 0.15, mask_frac: float = 0.8, random_frac: float = 0.1
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """BERT-style corruption of a (B, N) batch of bin indices (all tensor ops, no host sync).

    selected ~ Bernoulli(mask_prob) per token, and if none is selected one uniformly random
    (row, slot) is; of the selected, a fraction ``mask_frac`` -> [MASK] (= bins_i),
    ``random_frac`` -> a uniform random bin of that slot, the rest unchanged.
    Returns (inputs, selected, masked, randomised), the last three boolean (B, N).
    """
    b, n = actions.shape
    dev = actions.device
    u = torch.rand((3, b, n), generator=generator, device=dev)
    selected = u[0] < mask_prob
    forced = torch.randint(b * n, (1,), generator=generator, device=dev)
    none = ~selected.any()
    flat = selected.view(-1)
    selected = flat.scatter(0, forced, flat.gather(0, forced) | none.view(1)).view(b, n)
    masked = selected & (u[1] < mask_frac)
    randomised = selected & (u[1] >= mask_frac) & (u[1] < mask_frac + random_frac)
    random_bins = torch.minimum((u[2] * bins).long(), bins - 1)
    inputs = torch.where(masked, bins.expand(b, n), torch.where(randomised, random_bins, actions))
    return inputs, selected, masked, randomised


def masked_action_modelling_loss(asm: ActionStructureModel, obs: torch.Tensor, actions: torch.Tensor,
                                 generator: Optional[torch.Generator] = None, *, mask_prob: float = 0.15,
                                 mask_frac: float = 0.8, random_frac: float = 0.1
                                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L = sum_{(b,i) selected} -log p(a_bi | s_b, corrupted a_b) / #selected.

    Metrics (detached tensors, no host sync): ``mam_loss``, ``masked_accuracy`` (argmax == true
    bin over the selected tokens), ``selected_fraction``.
    """
    inputs, selected, _, _ = mam_corrupt(actions, asm.bins_tensor, generator, mask_prob, mask_frac, random_frac)
    logits = asm(obs, inputs)
    b, n = actions.shape
    ce = F.cross_entropy(logits.reshape(b * n, -1), actions.reshape(-1), reduction="none").view(b, n)
    weight = selected.to(ce.dtype)
    count = weight.sum()
    loss = (ce * weight).sum() / count
    with torch.no_grad():
        correct = (logits.argmax(-1) == actions).to(ce.dtype)
        metrics = {"mam_loss": loss.detach(), "masked_accuracy": (correct * weight).sum() / count,
                   "selected_fraction": weight.mean()}
    return loss, metrics


@torch.no_grad()
def exact_match_rate(asm: ActionStructureModel, obs: torch.Tensor, actions: torch.Tensor,
                     max_sequences: int = 32768) -> dict[str, torch.Tensor]:
    """Leave-one-slot-out probe (eval mode): slot i predicted as argmax p(a_i | s, a_{-i}) with all
    other slots visible. Returns ``exact_match`` (fraction of rows with all N right),
    ``slot_accuracy`` (N,), ``mean_slot_accuracy``, and the leave-one-out NLL
    ``nll_loo`` (N,) = mean over rows of -log p(a_i | s, a_{-i}). Rows are processed in chunks
    so that at most ``max_sequences`` sequences (rows x N copies) go through the encoder at once.
    """
    was_training = asm.training
    asm.eval()
    try:
        b, n = actions.shape
        chunk = max(1, max_sequences // n)
        eye = torch.eye(n, dtype=torch.bool, device=actions.device)
        correct, nll = [], []
        for start in range(0, b, chunk):  # chunks of rows (memory), not slots
            o, a = obs[start:start + chunk], actions[start:start + chunk]
            rows = a.shape[0]
            tokens = torch.where(eye[:, None, :], asm.bins_tensor, a[None])  # copy j masks slot j: (N, rows, N)
            logits = asm(o.repeat(n, 1), tokens.reshape(n * rows, n)).view(n, rows, n, -1)
            own = logits.diagonal(dim1=0, dim2=2).transpose(1, 2)  # (rows, N, max_bins): slot i of copy i
            correct.append(own.argmax(-1) == a)
            nll.append(-own.log_softmax(-1).gather(-1, a[..., None]).squeeze(-1))
        c = torch.cat(correct).float()
        return {"exact_match": c.prod(1).mean(), "slot_accuracy": c.mean(0), "mean_slot_accuracy": c.mean(),
                "nll_loo": torch.cat(nll).mean(0)}
    finally:
        asm.train(was_training)


@torch.no_grad()
def state_only_nll(asm: ActionStructureModel, obs: torch.Tensor, actions: torch.Tensor,
                   chunk: int = 32768) -> torch.Tensor:
    """(N,) mean over rows of -log p(a_i | s) with every slot masked: what the state alone tells
    about each sub-action (eval mode)."""
    was_training = asm.training
    asm.eval()
    try:
        masked = asm.bins_tensor.expand_as(actions)
        out = []
        for start in range(0, actions.shape[0], chunk):
            logits = asm(obs[start:start + chunk], masked[start:start + chunk])
            out.append(-logits.log_softmax(-1).gather(-1, actions[start:start + chunk, :, None]).squeeze(-1))
        return torch.cat(out).mean(0)
    finally:
        asm.train(was_training)


def asm_probe(asm: ActionStructureModel, obs: torch.Tensor, actions: torch.Tensor, seed: int,
              probe_samples: int = 4096) -> dict[str, Any]:
    """The pre-trained ASM's probe on ``probe_samples`` rows drawn without replacement (own
    generator seeded ``seed``, so a cached checkpoint gets the same rows): leave-one-out
    accuracy and exact joint match (:func:`exact_match_rate`) and the structure measure
    structure_i = NLL(a_i | s) - NLL(a_i | s, a_{-i}) (nats per slot; state-only NLL with every
    slot masked, leave-one-out NLL with only slot i masked), per slot and its mean over slots."""
    t0 = time.perf_counter()
    gen = torch.Generator(device=obs.device)
    gen.manual_seed(seed)
    idx = torch.randperm(obs.shape[0], generator=gen, device=obs.device)[:probe_samples]
    o, a = obs[idx], actions[idx].long()
    loo = exact_match_rate(asm, o, a)
    state = state_only_nll(asm, o, a)
    structure = state - loo["nll_loo"]
    return {"exact_match": loo["exact_match"].item(), "mean_slot_accuracy": loo["mean_slot_accuracy"].item(),
            "slot_accuracy": loo["slot_accuracy"].tolist(),
            "nll_state": state.tolist(), "nll_loo": loo["nll_loo"].tolist(), "structure": structure.tolist(),
            "mean_nll_state": state.mean().item(), "mean_nll_loo": loo["nll_loo"].mean().item(),
            "mean_structure": structure.mean().item(),
            "probe_samples": int(idx.numel()), "probe_seconds": time.perf_counter() - t0}


PROBE_KEYS = ("exact_match", "mean_structure")  # a checkpoint's final_metrics hold the whole probe


@dataclasses.dataclass
class ASMCheckpoint:
    """A pre-trained ASM: weights (CPU), constructor config, training config, metrics history
    (one dict per log interval), final probe metrics and the pre-training wall-clock seconds
    (training loop only; SPIN's time to target adds it, also when loaded from the cache)."""

    state_dict: dict[str, torch.Tensor]
    config: dict[str, Any]
    train_config: dict[str, Any]
    history: list[dict[str, float]]
    final_metrics: dict[str, Any]
    pretrain_seconds: float
    cache_key: Optional[str] = None
    dataset_sha256: Optional[str] = None
    dataset_identity: Optional[str] = None  # None in checkpoints cached before identities
    device: str = "cpu"
    from_cache: bool = False
    path: Optional[str] = None

    def build(self, device: Optional[torch.device | str] = None) -> ActionStructureModel:
        """The ASM with these weights (architecture from ``config``, gin bindings not consulted)."""
        model = ActionStructureModel(**self.config)
        model.load_state_dict(self.state_dict)
        return model.to(device) if device is not None else model

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d.pop("from_cache"), d.pop("path")
        d["format_version"] = CACHE_FORMAT_VERSION
        return d

    def save(self, path: str | os.PathLike) -> None:
        """Atomic write: temp file in the same directory, fsync, os.replace."""
        atomic_torch_save(self.to_dict(), os.fspath(path))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ASMCheckpoint":
        """Load with ``weights_only=True`` (tensors and plain Python containers only)."""
        # tensors and plain values only; a regular file, not a link (the cache may be shared)
        d = load_torch_file(path, "ASM cache file", follow_symlinks=False)
        if not isinstance(d, dict) or "state_dict" not in d:
            raise UnreadableFileError(f"{os.fspath(path)}: not an ASM cache file")
        d.pop("format_version", None)
        names = {f.name for f in dataclasses.fields(cls)}
        _check_cached(d, os.fspath(path))
        return cls(**{k: v for k, v in d.items() if k in names}, path=os.fspath(path))


def _check_cached(d: dict, path: str) -> None:
    """UnreadableFileError unless `d` is what :meth:`ASMCheckpoint.to_dict` writes: every field
    of its type, and a state_dict with exactly the tensors (names, shapes, dtypes) of the ASM its
    config describes (checked on the meta device: nothing is allocated)."""
    def bad(what: str) -> UnreadableFileError:
        return UnreadableFileError(f"{path}: not a usable ASM cache file ({what})")

    sd, config = d.get("state_dict"), d.get("config")
    if not isinstance(sd, dict) or not sd or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                      for k, v in sd.items()):
        raise bad("its state_dict is empty or not a dict of named tensors")
    if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
        raise bad("its config is not a dict")
    for key, kind in (("train_config", dict), ("history", list), ("final_metrics", dict)):
        if not isinstance(d.get(key), kind):
            raise bad(f"{key} is not a {kind.__name__}")
    secs = d.get("pretrain_seconds")
    if isinstance(secs, bool) or not isinstance(secs, (int, float)) or not math.isfinite(secs) or secs < 0:
        raise bad("pretrain_seconds is not a finite number >= 0")
    for key in ("cache_key", "dataset_sha256", "dataset_identity", "device"):
        if d.get(key) is not None and not isinstance(d[key], str):
            raise bad(f"{key} is not a string")
    try:
        with torch.device("meta"):
            expected = ActionStructureModel(**config).state_dict()
    except Exception as e:  # noqa: BLE001 - any config the model refuses: not ours
        raise bad(f"its config does not describe an ASM: {type(e).__name__}") from None
    if set(expected) != set(sd):
        raise bad(f"its state_dict has {len(sd)} tensors, not the {len(expected)} its config needs")
    for k, t in expected.items():
        if tuple(sd[k].shape) != tuple(t.shape) or sd[k].dtype != t.dtype:
            raise bad(f"tensor {k} has shape {tuple(sd[k].shape)} {sd[k].dtype}, expected {tuple(t.shape)} {t.dtype}")


def tensors_sha256(*tensors: torch.Tensor) -> str:
    """sha256 over (dtype, shape, bytes) of each tensor (fallback dataset id for the cache key)."""
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def asm_cache_key(dataset_digest: str, asm_config: dict, train_config: dict, seed: int, device_type: str,
                  *, identity: bool = False) -> str:
    """sha256 of the canonical JSON of everything that determines the checkpoint.

    `dataset_digest` is the dataset's data identity (``identity=True``), or a file sha256 /
    tensor hash (the keys of caches written before identities, still looked up)."""
    payload = dict(format_version=CACHE_FORMAT_VERSION, asm_config=asm_config,
                   train_config=train_config, seed=int(seed), device_type=device_type)
    payload["dataset_identity" if identity else "dataset_sha256"] = dataset_digest
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def asm_num_steps(total_rows: int, steps: Optional[int], epochs: Optional[float], batch_size: int) -> int:
    """Pre-training steps: ``steps``, else round(epochs * ceil(T / batch_size)) (default 100 epochs)."""
    if steps is not None and epochs is not None:
        raise ValueError("give `steps` or `epochs`, not both")
    if steps is None:
        steps = int(round((100 if epochs is None else epochs) * math.ceil(total_rows / batch_size)))
    return max(1, int(steps))


@gin.configurable(denylist=["dataset_tensors", "log_fn"])
def pretrain_asm(dataset_tensors: dict[str, torch.Tensor], *, bins: Sequence[int], steps: Optional[int] = None,
                 epochs: Optional[float] = None, batch_size: int = 1024, lr: float = 4e-4,
                 grad_clip: Optional[float] = 1.0, seed: int = 0, device: Optional[torch.device | str] = None,
                 cache_dir: Optional[str | os.PathLike] = None, dataset_sha256: Optional[str] = None,
                 dataset_identity: Optional[str] = None,
                 log_fn: Optional[LogFn] = None, log_every: int = 50,
                 probe_samples: int = 4096, mask_prob: float = 0.15, mask_frac: float = 0.8,
                 random_frac: float = 0.1) -> ASMCheckpoint:
    """Pre-train an ``ActionStructureModel`` (gin-configured architecture) by masked action modelling.

    ``steps`` or ``epochs`` (one epoch = ceil(T / batch_size) steps; default 100 epochs, the
    paper's); batches drawn uniformly with replacement; Adam(lr), grad-norm clip. Seeded and
    side-effect free on the global RNG. With ``cache_dir`` the result is cached at
    ``<cache_dir>/asm-<key>.pt`` with key = sha256(dataset identity, ASM config, training config,
    seed, device type); a later call with the same key loads it (``from_cache=True``, and the
    stored ``pretrain_seconds``). Without ``dataset_identity`` the key uses ``dataset_sha256``
    (the file checksum), else a hash of the tensors. A checkpoint cached under the file
    sha256 before identities existed is found through ``dataset_sha256`` and re-keyed under
    the identity (a copy; the same data, since that sha256 is this file's). An
    exclusive file lock makes concurrent runs that need the same ASM train it only once; a
    corrupt cache file is retrained and replaced (writes are atomic).
    """
    obs, actions = dataset_tensors["observations"], dataset_tensors["actions"]
    device = torch.device(device) if device is not None else obs.device
    obs, actions = obs.to(device), actions.to(device=device, dtype=torch.long)
    total_rows, obs_dim = obs.shape
    bins = as_bins(bins, actions.shape[1])
    if len(bins) != actions.shape[1]:
        raise ValueError(f"bins has {len(bins)} slots but actions have {actions.shape[1]}")
    steps = asm_num_steps(total_rows, steps, epochs, batch_size)
    train_config = dict(steps=steps, batch_size=int(batch_size), lr=float(lr),
                        grad_clip=None if grad_clip is None else float(grad_clip), mask_prob=float(mask_prob),
                        mask_frac=float(mask_frac), random_frac=float(random_frac),
                        sampling="uniform_with_replacement", optimizer="adam")

    rng_devices = ([device.index if device.index is not None else torch.cuda.current_device()]
                   if device.type == "cuda" else [])
    with torch.random.fork_rng(devices=rng_devices):
        torch.manual_seed(seed)
        model = ActionStructureModel(obs_dim, bins)  # gin bindings apply here
        if cache_dir is None:
            return _train_asm(model, obs, actions, train_config, seed, device, log_fn, log_every, probe_samples,
                              dataset_sha256=dataset_sha256, dataset_identity=dataset_identity, key=None)
        if dataset_sha256 is None and dataset_identity is None:
            dataset_sha256 = tensors_sha256(obs, actions)
        legacy = (None if dataset_sha256 is None else
                  asm_cache_key(dataset_sha256, model.config, train_config, seed, device.type))
        key = (legacy if dataset_identity is None else
               asm_cache_key(dataset_identity, model.config, train_config, seed, device.type, identity=True))
        path = os.path.join(os.fspath(cache_dir), f"asm-{key}.pt")
        os.makedirs(os.fspath(cache_dir), exist_ok=True)
        with file_lock(path + ".lock"):  # concurrent runs needing the same ASM train it once
            found = _load_cached(path)
            if found is None and legacy is not None and legacy != key:
                found = _load_cached(os.path.join(os.fspath(cache_dir), f"asm-{legacy}.pt"))
                if found is not None:  # re-key a pre-identity checkpoint under the identity
                    found.cache_key, found.dataset_identity = key, dataset_identity
                    found.save(path)
                    found.path = path
            if found is not None:
                if not all(k in found.final_metrics for k in PROBE_KEYS):  # cached before the structure probe
                    found.final_metrics.update(asm_probe(found.build(device), obs, actions, seed + 2, probe_samples))
                    found.save(path)
                return found
            ckpt = _train_asm(model, obs, actions, train_config, seed, device, log_fn, log_every, probe_samples,
                              dataset_sha256=dataset_sha256, dataset_identity=dataset_identity, key=key)
            ckpt.save(path)
            ckpt.path = path
            return ckpt


def _load_cached(path: str) -> Optional[ASMCheckpoint]:
    """The checkpoint cached at `path` (``from_cache=True``), or None when absent, corrupt or
    incompatible (it is then retrained and overwritten); UnsafeFileError for a planted pickle."""
    if not os.path.lexists(path):
        return None
    try:  # a file that would run code is refused (UnsafeFileError), never retrained over
        ckpt = ASMCheckpoint.load(path)
    except (UnreadableFileError, TypeError):  # truncated, corrupt, planted with a wrong or empty
        return None  # state_dict, a FIFO or a link: a cache miss (retrained and replaced by rename)
    ckpt.from_cache = True
    return ckpt


def _train_asm(model: ActionStructureModel, obs: torch.Tensor, actions: torch.Tensor, train_config: dict,
               seed: int, device: torch.device, log_fn: Optional[LogFn],
               log_every: int, probe_samples: int, *, dataset_sha256: Optional[str],
               dataset_identity: Optional[str], key: Optional[str]) -> ASMCheckpoint:
    """The MAM training loop (one host sync per ``log_every`` steps) and the final probe."""
    total_rows = obs.shape[0]
    steps, batch_size, grad_clip = train_config["steps"], train_config["batch_size"], train_config["grad_clip"]
    mam_kw = {k: train_config[k] for k in ("mask_prob", "mask_frac", "random_frac")}
    model.to(device).train()
    gen = torch.Generator(device=device)
    gen.manual_seed(seed + 1)
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=train_config["lr"], **adam_kwargs(device))
    history: list[dict[str, float]] = []
    run_loss = torch.zeros((), device=device)
    run_acc = torch.zeros((), device=device)
    since, last_t = 0, 0.0
    if log_fn is not None:
        log_fn(0, steps, None)
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        idx = torch.randint(total_rows, (batch_size,), generator=gen, device=device)
        loss, m = masked_action_modelling_loss(model, obs[idx], actions[idx], gen, **mam_kw)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, grad_clip, foreach=True)
        opt.step()
        run_loss += m["mam_loss"]
        run_acc += m["masked_accuracy"]
        since += 1
        if step % log_every == 0 or step == steps:
            l, a = (torch.stack([run_loss, run_acc]) / since).tolist()  # the only host sync
            now = time.perf_counter() - t0
            rec = {"step": step, "mam_loss": l, "masked_accuracy": a, "wall_s": now,
                   "steps_per_s": since / max(now - last_t, 1e-9)}
            history.append(rec)
            if log_fn is not None:
                log_fn(step, steps, rec)
            run_loss.zero_(), run_acc.zero_()
            since, last_t = 0, now
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    pretrain_seconds = time.perf_counter() - t0

    final_metrics = {"mam_loss": history[-1]["mam_loss"], "masked_accuracy": history[-1]["masked_accuracy"],
                     **asm_probe(model, obs, actions, seed + 2, probe_samples)}
    return ASMCheckpoint(state_dict={k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                         config=model.config, train_config=train_config, history=history,
                         final_metrics=final_metrics, pretrain_seconds=pretrain_seconds, cache_key=key,
                         dataset_sha256=dataset_sha256, dataset_identity=dataset_identity,
                         device=str(device))

"""The training loop as a generator of :class:`TrainEvent` (the CLI, the napari widget and Python share it).

``train_iter(config)`` yields ``start``, ``step`` (every ``log_every`` steps), ``epoch`` (train and validation
losses and metrics), ``samples`` (predictions on a few validation samples, for drawing), ``checkpoint`` and finally
``done`` (or ``stopped`` when cancelled: a resumable checkpoint is written first). Under ``torchrun`` every process
runs the generator; only rank 0 writes files and its events carry the metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from napari_smil_mv.training import checkpoint as ckpt
from napari_smil_mv.training.config import TrainConfig, load_config, save_config
from napari_smil_mv.training.data import (
    EpochBatches,
    OriginalCameras,
    collate,
    make_datasets,
    to_device,
    view_distortion,
)
from napari_smil_mv.training.events import TrainEvent, format_metrics, write_history
from napari_smil_mv.training.losses import compute_losses, joint_weight_vector
from napari_smil_mv.training.metrics import ValidationMetrics
from napari_smil_mv.training.setup import (
    build_spec,
    clip_grad_norm,
    lr_factor,
    make_optimizer,
    make_runtime,
    resolve_training_body_model,
    set_lr,
)
from napari_smil_mv.utils.cancel import CancelFlag, is_cancelled


def _as_config(config) -> TrainConfig:
    if isinstance(config, TrainConfig):
        return config.validate()
    if isinstance(config, dict):
        return TrainConfig.from_dict(config)
    return load_config(config)


class _Run:
    """State of one run (kept in one object so the generator stays readable)."""

    def __init__(self, config: TrainConfig, resume, cancel: CancelFlag) -> None:
        self.cfg = config
        self.cancel = cancel
        self.t0 = time.perf_counter()
        self.rt = make_runtime(config)
        self.out_dir = Path(config.output_dir)
        torch.manual_seed(config.seed)
        self.train_ds, self.val_ds = make_datasets(config.data, config.seed)
        base = self.train_ds.base
        self.model_data = resolve_training_body_model(config, base.info)
        self.blob = None
        if resume:
            path = self.out_dir / "last.pt" if resume is True else Path(resume)
            self.blob = ckpt.read_checkpoint(path)
            from napari_smil_mv.network import NetworkSpec

            self.spec = NetworkSpec.from_dict(dict(self.blob["spec"]))
            if self.spec.camera_names != base.get_canonical_camera_order():
                raise ValueError(
                    f"{path} was trained on cameras {self.spec.camera_names}, the dataset has others"
                )
        else:
            self.spec = build_spec(config, base, self.model_data, self.train_ds.indices)
        from napari_smil_mv.body import SMILModel
        from napari_smil_mv.network import MultiViewRegressor

        device = self.rt.device
        self.net = MultiViewRegressor(self.spec, load_pretrained=self.blob is None).to(device)
        self.smil = SMILModel(self.model_data).to(device)
        self.joint_w = joint_weight_vector(
            self.spec.joint_names, config.loss.joint_weights, config.loss.ignored_joints
        ).to(device)
        self.opt = make_optimizer(self.net, config.optim)
        fp16 = self.rt.amp_dtype == torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=fp16)
        self.model = self.net
        if self.rt.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [device.index] if device.type == "cuda" else None
            self.model = DDP(self.net, device_ids=ids, find_unused_parameters=True)
        self.val_original = OriginalCameras.read(self.val_ds.path) if self.val_ds is not None else None
        self.train_dist_cams = OriginalCameras.read(base.path)
        tc = self.train_dist_cams
        if tc is not None and not tc.undistorted and tc.fisheye.any():
            raise ValueError(
                f"{base.path}: fisheye views whose distortion was kept in the images are not supported; "
                "preprocess with undistortion"
            )
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.history: list[dict] = []
        self.best = float("inf")
        if self.blob is not None:
            self._restore()
        if self.blob is None:
            torch.manual_seed(config.seed + 1000 * self.rt.rank)  # dropout differs between processes
        self.steps_per_epoch = len(self._batches(0, 0))
        self.total_steps = self.steps_per_epoch * config.epochs

    # ------------------------------------------------------------------------------------------ helpers
    def _restore(self) -> None:
        b = self.blob
        self.net.load_state_dict(b["model_state"], strict=True)
        self.opt.load_state_dict(b["optimizer_state"])
        if b.get("scaler_state"):
            self.scaler.load_state_dict(b["scaler_state"])
        self.epoch, self.step_in_epoch = int(b["epoch"]), int(b["step_in_epoch"])
        self.global_step = int(b["global_step"])
        self.history = list(b.get("history", []))
        self.best = float(b.get("best", float("inf")))
        ckpt.restore_rng(b.get("rng", {}), self.rt.device)

    def _batches(self, epoch: int, skip: int) -> EpochBatches:
        d = self.cfg.data
        return EpochBatches(
            len(self.train_ds),
            d.batch_size,
            self.cfg.seed,
            epoch,
            True,
            self.rt.rank,
            self.rt.world,
            skip,
            self.cfg.max_steps_per_epoch,
        )

    def _loader(self, dataset, sampler) -> torch.utils.data.DataLoader:
        g = torch.Generator()
        g.manual_seed(self.cfg.seed)
        return torch.utils.data.DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=collate,
            num_workers=self.cfg.data.num_workers,
            pin_memory=self.rt.device.type == "cuda",
            generator=g,
        )

    def event(self, kind: str, message: str = "", **kw) -> TrainEvent:
        done = self.global_step / max(1, self.total_steps)
        return TrainEvent(
            kind=kind,
            epoch=self.epoch,
            epochs=self.cfg.epochs,
            step_in_epoch=self.step_in_epoch,
            steps_per_epoch=self.steps_per_epoch,
            global_step=self.global_step,
            progress=min(1.0, done),
            message=message,
            elapsed_s=time.perf_counter() - self.t0,
            rank=self.rt.rank,
            **kw,
        )

    def autocast(self):
        dt = self.rt.amp_dtype
        return torch.autocast(self.rt.device.type, dtype=dt or torch.float32, enabled=dt is not None)

    def batch(self, x: dict, y: dict, cams: OriginalCameras | None) -> dict:
        return to_device(x, y, self.rt.device, self.spec.image_size, view_distortion(cams, x))

    def save(self, name: str, finished_epoch: bool) -> Path:
        epoch, step = (self.epoch + 1, 0) if finished_epoch else (self.epoch, self.step_in_epoch)
        return ckpt.save_checkpoint(
            self.out_dir / name,
            spec=self.spec.to_dict(),
            model_state=self.net.state_dict(),
            optimizer_state=self.opt.state_dict(),
            scaler_state=self.scaler.state_dict() if self.scaler.is_enabled() else {},
            epoch=epoch,
            step_in_epoch=step,
            global_step=self.global_step,
            best=self.best,
            history=self.history,
            config=self.cfg.to_dict(),
            rng=ckpt.rng_state(self.rt.device),
        )

    # ------------------------------------------------------------------------------------------ stages
    def train_step(self, x: dict, y: dict, weights: dict, freeze: bool) -> tuple[list[str], torch.Tensor]:
        """One optimiser step; returns the loss names (terms, then ``total``) and their detached values ``(n,)``
        on the device (not synchronised: the caller converts them to numbers only when it reports)."""
        b = self.batch(x, y, self.train_dist_cams)
        factor = lr_factor(self.cfg.optim, self.epoch, self.global_step, self.total_steps)
        self.lr = set_lr(self.opt, factor, freeze)
        with self.autocast():
            out = self.model(b["images"], b["view_mask"], b["camera_indices"], b["K"], b["R"], b["t"])
        history = self.net.decode_history(out) if weights.get("ief_intermediate", 0) > 0 else None
        total, terms, _ = compute_losses(
            out, b, self.smil, weights, self.joint_w, self.spec.image_size, self.spec.body_length, history
        )
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        if self.cfg.optim.grad_clip > 0:
            self.scaler.unscale_(self.opt)
            clip_grad_norm(self.net.parameters(), self.cfg.optim.grad_clip)
        self.scaler.step(self.opt)
        self.scaler.update()
        names = [*terms, "total"]
        return names, torch.stack([*terms.values(), total]).detach().float()

    @torch.no_grad()
    def validate(self, weights: dict) -> tuple[dict, dict]:
        """Validation loss terms and metrics (gathered over processes; metrics empty without a val set)."""
        if self.val_ds is None:
            return {}, {}
        self.net.eval()
        calibrated = self.val_ds.info.has_camera_parameters
        metrics = ValidationMetrics(
            self.spec.camera_names, self.spec.image_size, self.spec.world_scale, self.val_original, calibrated
        )
        bs = self.cfg.data.val_batch_size or self.cfg.data.batch_size
        sampler = EpochBatches(len(self.val_ds), bs, 0, 0, False, self.rt.rank, self.rt.world)
        sums: dict[str, float] = {}
        count = 0
        from napari_smil_mv.network import project

        for x, y in self._loader(self.val_ds, sampler):
            b = self.batch(x, y, self.val_original)
            with self.autocast():
                out = self.net(b["images"], b["view_mask"], b["camera_indices"], b["K"], b["R"], b["t"])
            total, terms, extra = compute_losses(
                out, b, self.smil, weights, self.joint_w, self.spec.image_size, self.spec.body_length
            )
            n = int(b["images"].shape[0])
            count += n
            values = torch.stack([*terms.values(), total]).tolist()  # one device sync per batch, not per term
            for k, v in zip([*terms, "total"], values, strict=True):
                sums[k] = sums.get(k, 0.0) + v * n
            if calibrated:
                crop, _ = project(extra["joints"], b["K"], b["R"], b["t"], b["dist"])
            else:
                crop = extra["pixels"]
            metrics.add(
                x["sample_index"].numpy(),
                x["camera_indices"].numpy(),
                extra["joints"].double().cpu().numpy(),
                b["kp2d"].double().cpu().numpy(),
                b["vis"].cpu().numpy(),
                b["kp3d"].double().cpu().numpy(),
                b["kp3d_valid"].cpu().numpy(),
                crop.double().cpu().numpy(),
            )
        if self.rt.distributed:
            import torch.distributed as dist

            gathered: list = [None] * self.rt.world
            dist.all_gather_object(gathered, (sums, count, metrics.state()))
            sums, count = {}, 0
            for s, c, _ in gathered:
                count += c
                for k, v in s.items():
                    sums[k] = sums.get(k, 0.0) + v
            metrics.merge([g[2] for g in gathered])
        self.net.train()
        losses = {k: v / max(1, count) for k, v in sums.items()}
        return losses, metrics.compute()

    @torch.no_grad()
    def sample_predictions(self) -> list[dict]:
        """Predictions on the first ``n_samples`` validation samples (or training samples without a val set)."""
        ds = self.val_ds if self.val_ds is not None else self.train_ds.base
        n = min(self.cfg.n_samples, len(ds))
        if n == 0:
            return []
        self.net.eval()
        items = [ds[int(i)] for i in np.linspace(0, len(ds) - 1, n).round()]  # spread over the set
        x, y = collate(items)
        cams = self.val_original if self.val_ds is not None else self.train_dist_cams
        b = self.batch(x, y, cams)
        from napari_smil_mv.network import body_joints, project

        out = self.net(b["images"], b["view_mask"], b["camera_indices"], b["K"], b["R"], b["t"])
        pixels, _ = project(body_joints(self.smil, out), out["K"], out["R"], out["t"], b["dist"])
        self.net.train()
        result = []
        for i, (xi, _) in enumerate(items):
            v = int(xi["num_active_views"])
            result.append(
                {
                    "images": (np.stack(xi["images"]) * 255).round().astype(np.uint8),
                    "keypoints": b["kp2d"][i, :v].cpu().numpy(),
                    "visible": b["vis"][i, :v].cpu().numpy() > 0,
                    "predicted": pixels[i, :v].float().cpu().numpy(),
                    "camera_names": list(xi["camera_names"]),
                    "session": xi["session_name"],
                    "frame": int(xi["frame_idx"]),
                }
            )
        return result


def _add_losses(sums: dict[str, float], names: list[str], pending: list[torch.Tensor]) -> None:
    """Add the pending per-step loss vectors ``(n,)`` to ``sums`` (one device sync) and clear them."""
    if pending:
        totals = torch.stack(pending).cpu().double().sum(0).tolist()
        for k, v in zip(names, totals, strict=True):
            sums[k] = sums.get(k, 0.0) + v
        pending.clear()


def train_iter(
    config: TrainConfig | dict | str | Path,
    resume: bool | str | Path | None = None,
    cancel: CancelFlag = None,
    overwrite: bool = False,
) -> Iterator[TrainEvent]:
    """Train a network, yielding :class:`TrainEvent` progress (see the module docstring).

    Parameters
    ----------
    config
        A :class:`TrainConfig`, a dict, or a ``.json``/``.toml`` file.
    resume
        None/False: a new run; True: resume from ``<output_dir>/last.pt``; a path: resume from that checkpoint
        (exactly: optimiser, schedule, random states and the position within the epoch are restored).
    cancel
        ``threading.Event`` or callable; when set, a resumable ``last.pt`` is written and a ``stopped`` event ends
        the iteration. Closing the generator stops without writing.
    overwrite
        For a new run: replace an earlier run in ``output_dir`` (its checkpoints, history and config are removed
        when the run starts). Without it a new run over an earlier one raises FileExistsError at once.
    """
    cfg = _as_config(config)
    earlier = [] if resume else ckpt.check_new_run_folder(cfg.output_dir, overwrite)
    return _train(cfg, resume, cancel, earlier)


def _train(cfg: TrainConfig, resume, cancel: CancelFlag, earlier: list[Path]) -> Iterator[TrainEvent]:
    run = _Run(cfg, resume, cancel)
    rt = run.rt
    try:
        if rt.is_main:
            for old in earlier:  # --overwrite: the earlier run's files go, none is mixed into the new one
                old.unlink(missing_ok=True)
            run.out_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, run.out_dir / "config.json")
        n_val = 0 if run.val_ds is None else len(run.val_ds)
        yield run.event(
            "start",
            f"training on {len(run.train_ds)} samples ({n_val} validation), {run.steps_per_epoch} steps per epoch, "
            f"{cfg.epochs} epochs, device {rt.device}, {rt.world} process(es), backbone {run.spec.backbone}",
        )
        run.lr = 0.0
        stop_time = False
        while run.epoch < cfg.epochs and not stop_time:
            epoch_t0 = time.perf_counter()
            run.train_ds.epoch = run.epoch
            weights = cfg.loss.weights_at(run.epoch)
            freeze = run.epoch < cfg.optim.freeze_backbone_epochs
            sums: dict[str, float] = {}
            n_steps = 0
            run.net.train()
            pending: list[torch.Tensor] = []  # per-step loss values not yet read back from the device
            names: list[str] = []
            for x, y in run._loader(run.train_ds, run._batches(run.epoch, run.step_in_epoch)):
                names, vals = run.train_step(x, y, weights, freeze)
                pending.append(vals)
                n_steps += 1
                run.step_in_epoch += 1
                run.global_step += 1
                if run.global_step % cfg.log_every == 0:
                    _add_losses(sums, names, pending)
                    means = {k: v / n_steps for k, v in sums.items()}
                    yield run.event(
                        "step",
                        f"epoch {run.epoch + 1}/{cfg.epochs} step {run.step_in_epoch}/{run.steps_per_epoch} "
                        f"loss {means['total']:.4g}",
                        losses=means,
                        lr=run.lr,
                    )
                if is_cancelled(cancel):
                    path = run.save("last.pt", finished_epoch=False) if rt.is_main else None
                    yield run.event(
                        "stopped",
                        f"stopped at epoch {run.epoch + 1} step {run.step_in_epoch}; resume from {path}",
                        checkpoint=str(path) if path else None,
                        history=list(run.history),
                    )
                    return
                if (
                    not rt.distributed
                    and cfg.time_limit_s is not None
                    and time.perf_counter() - run.t0 > cfg.time_limit_s
                ):
                    stop_time = True
                    break
            _add_losses(sums, names, pending)
            train_losses = {k: v / max(1, n_steps) for k, v in sums.items()}
            val_losses, metrics = run.validate(weights)
            record = {
                "epoch": run.epoch + 1,
                "train": train_losses,
                "val": val_losses,
                "metrics": {k: v for k, v in metrics.items() if k != "px_per_camera"},
                "lr": run.lr,
                "elapsed_s": time.perf_counter() - run.t0,
                "epoch_s": time.perf_counter() - epoch_t0,
                "partial": stop_time,
            }
            run.history.append(record)
            key = metrics.get("px_median", float("nan")) if metrics else float("nan")
            if not np.isfinite(key):
                key = val_losses.get("total", train_losses.get("total", float("inf")))
            improved = key < run.best
            if improved:
                run.best = float(key)
            msg = f"epoch {run.epoch + 1}/{cfg.epochs}: train loss {train_losses.get('total', float('nan')):.4g}"
            if val_losses:
                msg += f", val loss {val_losses['total']:.4g}"
            if metrics:
                msg += ", " + format_metrics(metrics)
            yield run.event(
                "epoch",
                msg,
                losses=train_losses,
                val_losses=val_losses,
                metrics=metrics,
                lr=run.lr,
                history=list(run.history),
            )
            last_epoch = run.epoch + 1 >= cfg.epochs or stop_time
            if rt.is_main and cfg.n_samples and (run.epoch % cfg.sample_every == 0 or last_epoch):
                yield run.event("samples", "sample predictions", samples=run.sample_predictions())
            if rt.distributed and cfg.time_limit_s is not None:
                import torch.distributed as dist

                flag = [time.perf_counter() - run.t0 > cfg.time_limit_s]
                dist.broadcast_object_list(flag, src=0)
                stop_time = bool(flag[0])
            if rt.is_main:
                write_history(run.out_dir / "history.json", run.history)
                if improved:
                    run.save("best.pt", finished_epoch=True)
                if (run.epoch + 1) % cfg.checkpoint_every == 0 or last_epoch or stop_time:
                    path = run.save("last.pt", finished_epoch=True)
                    if cfg.keep_epoch_checkpoints:
                        run.save(f"epoch_{run.epoch + 1:04d}.pt", finished_epoch=True)
                    yield run.event("checkpoint", f"saved {path}", checkpoint=str(path))
            if rt.distributed:
                import torch.distributed as dist

                dist.barrier()
            run.epoch += 1
            run.step_in_epoch = 0
        reason = "time limit reached" if stop_time else "finished"
        best = run.out_dir / "best.pt"
        yield run.event(
            "done",
            f"{reason} after {run.epoch} epochs in {time.perf_counter() - run.t0:.0f} s; best checkpoint {best}",
            checkpoint=str(best) if rt.is_main else None,
            history=list(run.history),
            metrics=run.history[-1]["metrics"] if run.history else {},
        )
    finally:
        run.train_ds.base.close()
        if run.val_ds is not None:
            run.val_ds.close()
        if rt.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()


def train(
    config: TrainConfig | dict | str | Path,
    resume: bool | str | Path | None = None,
    cancel: CancelFlag = None,
    progress: Callable[[TrainEvent], None] | None = None,
    overwrite: bool = False,
) -> TrainEvent:
    """Run :func:`train_iter` to the end; returns the last event (``done`` or ``stopped``)."""
    last = None
    for event in train_iter(config, resume, cancel, overwrite):
        if progress is not None:
            progress(event)
        last = event
    assert last is not None
    return last

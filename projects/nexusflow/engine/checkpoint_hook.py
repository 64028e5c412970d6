"""``AtomicCheckpointHook``: mmengine's ``CheckpointHook`` whose files are never seen half-written.

mmengine 0.10.7 writes ``epoch_N.pth`` in place (a kill during the save leaves a partial file under the final
name, which ``--resume`` then picks up), deletes the oldest kept checkpoint *before* saving the new one, and
writes ``last_checkpoint`` in place. This hook writes each checkpoint to a hidden temporary file in the same folder
and renames it into place (``os.replace``, atomic on one file system), does the same for ``last_checkpoint``, and
removes the checkpoint that falls out of ``max_keep_ckpts`` only after the new one is in place. Non-local back ends
(``backend_args`` naming a remote store) keep mmengine's behaviour.

It also rejects unknown keyword arguments when it is built: ``CheckpointHook`` forwards them to
``Runner.save_checkpoint`` at the first save, so a typo (``max_keep_ckpt=1``) failed only after a full epoch.

Every checkpoint the runner saves while this hook is registered stores its message hub as plain data
(``plain_checkpoint.py``), so it loads with torch's default ``weights_only=True``; the hook rebuilds it on resume.
"""
import inspect
import os
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.runner import Runner

from mmdet3d.registry import HOOKS

from .plain_checkpoint import from_plain, to_plain

__all__ = ['AtomicCheckpointHook', 'atomic_write_text']


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``."""
    tmp = osp.join(osp.dirname(path), f'.{osp.basename(path)}.tmp')
    with open(tmp, 'w') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _save_checkpoint_kwargs() -> set:
    params = inspect.signature(Runner.save_checkpoint).parameters
    return set(params) - {'self', 'out_dir', 'filename', 'file_client_args', 'save_optimizer',
                          'save_param_scheduler', 'meta', 'by_epoch', 'backend_args'}


@HOOKS.register_module('NexusFlowAtomicCheckpointHook')
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` (same arguments) with atomic writes and delete-after-save (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        known = sorted(set(inspect.signature(CheckpointHook.__init__).parameters) - {'self', 'kwargs'})
        unknown = sorted(set(kwargs) - set(known) - _save_checkpoint_kwargs())
        if unknown:
            raise TypeError(f'default_hooks.checkpoint got unknown option(s) {unknown}; CheckpointHook accepts '
                            f'{known}')
        super().__init__(*args, **kwargs)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        to_plain(checkpoint)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        from_plain(checkpoint)

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not isinstance(self.file_backend, LocalBackend):
            return super()._save_checkpoint_with_step(runner, step, meta)
        dropped = self._update_kept(runner, step)
        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        tmp_filename = f'.{ckpt_filename}.tmp'
        runner.save_checkpoint(self.out_dir, tmp_filename, self.file_client_args,
                               save_optimizer=self.save_optimizer, save_param_scheduler=self.save_param_scheduler,
                               meta=meta, by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
        if not is_main_process():
            return
        os.replace(osp.join(self.out_dir, tmp_filename), self.last_ckpt)
        atomic_write_text(osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        if dropped is not None and osp.isfile(dropped):
            os.remove(dropped)

    def _update_kept(self, runner, step: int):
        """Record ``step`` among the kept checkpoints (as mmengine does, before the save, so that the saved message
        hub lists it); return the path of the checkpoint that falls out, to be deleted after the save, or None."""
        if self.max_keep_ckpts <= 0 or (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            return None
        dropped = None
        if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
            dropped = osp.join(self.out_dir, self.filename_tmpl.format(self.keep_ckpt_ids.popleft()))
        self.keep_ckpt_ids.append(step)
        runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        return dropped

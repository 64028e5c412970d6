"""tools/run_checks.py and AtomicCheckpointHook: no override silently ignored, no checkpoint lost or half-written."""
import collections
import importlib.util
from pathlib import Path

import pytest
import torch
from mmengine.fileio import LocalBackend
from mmengine.logging import HistoryBuffer, MessageHub

from mmdet3d.registry import HOOKS
from projects.nexusflow.engine import AtomicCheckpointHook
from projects.nexusflow.evaluation.checkpoint_check import (CheckpointReadError, check_checkpoint_file,
                                                            load_state_dict_from)
from tools.run_checks import ConfigOverrideError, WorkDirError, checkpoint_to_load, prepare_work_dir

REPO = Path(__file__).resolve().parents[2]
SGEO = str(REPO / 'configs/uniad_nexusflow/tiny_uniad_sgeo.py')


def load_tool(name):
    spec = importlib.util.spec_from_file_location(f'tool_{name}', REPO / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(options, tool='train', positional=()):
    module = load_tool(tool)
    return module.build_config(module.parse_args([SGEO, *positional, '--cfg-options'] + options))


def test_config_variables_cannot_be_overridden_silently(tmp_path):
    with pytest.raises(ConfigOverrideError) as err:
        build(['geo_split=reversed', 'lr=1e-4', 'max_epochs=3', 'no_such_key=1'])
    lines = str(err.value).splitlines()
    assert lines[0] == '--cfg-options refused:'
    assert lines[1] == ("  geo_split=reversed: 'geo_split' is a variable of the config file (geo_split = 'standard'), "
                        "substituted into the settings that use it when the file was parsed, so overriding it would "
                        "change nothing but the dumped config. Override the settings themselves: "
                        "train_dataloader.dataset.split (standard | reversed | full), or start from the *_sgeo.py / "
                        "*_rgeo.py config")
    assert lines[2].endswith('Override the settings themselves: optim_wrapper.optimizer.lr')
    assert lines[3].endswith('Override the settings themselves: param_scheduler.1.end, param_scheduler.1.T_max, '
                             'train_cfg.max_epochs, train_cfg.val_interval')
    assert lines[4].startswith("  no_such_key=1: 'no_such_key' is not a setting of this config")
    cfg = build(['train_dataloader.dataset.split=reversed', 'optim_wrapper.optimizer.lr=1e-4',
                 'default_hooks.checkpoint.max_keep_ckpts=1'])
    assert cfg.train_dataloader.dataset.split == 'reversed' and cfg.optim_wrapper.optimizer.lr == 1e-4
    torch.save({'state_dict': {}}, tmp_path / 'model.pth')
    with pytest.raises(ConfigOverrideError, match="'data_root' is a variable.*: train_dataloader.dataset.dataset."
                                                  "data_root, val_dataloader.dataset.data_root.*; or set the "
                                                  "environment variable .*: DATA_ROOT=elsewhere/ python tools/"):
        build(['data_root=elsewhere/'], tool='test', positional=[str(tmp_path / 'model.pth')])


def test_checkpoint_hook_rejects_unknown_options_when_built():
    with pytest.raises(TypeError, match=r"default_hooks.checkpoint got unknown option\(s\) \['max_keep_ckpt'\]; "
                                        r"CheckpointHook accepts \[.*'max_keep_ckpts'"):
        HOOKS.build(dict(type='NexusFlowAtomicCheckpointHook', interval=1, max_keep_ckpt=1))


class FakeRunner:
    """What ``_save_checkpoint_with_step`` uses of a Runner; ``kill_at`` simulates a kill during that save."""

    def __init__(self, work_dir, kill_at=None):
        self.work_dir, self.kill_at = str(work_dir), kill_at
        self.message_hub = MessageHub.get_instance(f'atomic-{id(self)}')

    def save_checkpoint(self, out_dir, filename, file_client_args=None, **kwargs):
        step = kwargs['meta']['step']
        with open(f'{out_dir}/{filename}', 'wb') as f:
            f.write(b'half')
            if step == self.kill_at:
                raise KeyboardInterrupt
            f.write(f'-complete-{step}'.encode())


def make_hook(work_dir, max_keep=2):
    hook = AtomicCheckpointHook(interval=1, max_keep_ckpts=max_keep)
    hook.out_dir, hook.file_backend, hook.filename_tmpl = str(work_dir), LocalBackend(), 'epoch_{}.pth'
    hook.keep_ckpt_ids = collections.deque([], max_keep)
    return hook


def test_checkpoints_are_written_atomically_and_old_ones_dropped_after_the_save(tmp_path):
    hook = make_hook(tmp_path)
    runner = FakeRunner(tmp_path, kill_at=3)
    for step in (1, 2):
        hook._save_checkpoint_with_step(runner, step, dict(step=step))
    with pytest.raises(KeyboardInterrupt):
        hook._save_checkpoint_with_step(runner, 3, dict(step=3))
    finals = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith('.'))
    assert finals == ['epoch_1.pth', 'epoch_2.pth', 'last_checkpoint']  # nothing deleted, no partial epoch_3.pth
    assert (tmp_path / 'epoch_2.pth').read_bytes() == b'half-complete-2'
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / 'epoch_2.pth')
    # the resumed run (kept ids [1, 2] from epoch_2's message hub) saves epoch 3 again, then drops epoch 1
    hook = make_hook(tmp_path)
    hook.keep_ckpt_ids.extend([1, 2])
    hook._save_checkpoint_with_step(FakeRunner(tmp_path), 3, dict(step=3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ['epoch_2.pth', 'epoch_3.pth', 'last_checkpoint']
    assert (tmp_path / 'epoch_3.pth').read_bytes() == b'half-complete-3'


def test_work_dir_with_checkpoints_needs_resume_or_overwrite(tmp_path):
    prepare_work_dir(str(tmp_path), resume=False, overwrite=False)  # empty: fine
    (tmp_path / 'epoch_1.pth').write_bytes(b'x')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_1.pth'))
    with pytest.raises(WorkDirError, match=rf"work dir {tmp_path} already holds checkpoints of an earlier run "
                                           rf"\(\['epoch_1.pth', 'last_checkpoint'\]\); a new run would overwrite "
                                           rf"them. Pass --resume to continue that run, --work-dir to train into "
                                           rf"another folder, or --overwrite to delete them first."):
        prepare_work_dir(str(tmp_path), resume=False, overwrite=False)
    prepare_work_dir(str(tmp_path), resume=True, overwrite=False)
    assert (tmp_path / 'epoch_1.pth').exists()
    prepare_work_dir(str(tmp_path), resume=False, overwrite=True)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match='pass one of them'):
        prepare_work_dir(str(tmp_path), resume=True, overwrite=True)


def test_truncated_or_empty_checkpoint_is_named(tmp_path):
    good = tmp_path / 'epoch_1.pth'
    torch.save({'state_dict': {'w': torch.zeros(100)}}, good)
    check_checkpoint_file(str(good))
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(good.read_bytes()[:300])
    with pytest.raises(CheckpointReadError, match=rf'checkpoint {cut} is truncated \(300 bytes, no zip central '
                                                  rf'directory\); it was probably cut short'):
        load_state_dict_from(str(cut))
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    with pytest.raises(CheckpointReadError, match=rf'checkpoint {empty} is empty \(0 bytes\)'):
        load_tool('test').build_config(load_tool('test').parse_args([SGEO, str(empty)]))
    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'\x80\x02not a pickle at all')
    with pytest.raises(CheckpointReadError, match=rf'checkpoint {garbage} could not be loaded'):
        load_state_dict_from(str(garbage))
    # --resume without a path: the work dir's last_checkpoint is checked before the Runner is built
    (tmp_path / 'last_checkpoint').write_text(str(cut))
    train = load_tool('train')
    cfg = train.build_config(train.parse_args([SGEO, '--work-dir', str(tmp_path), '--resume']))
    with pytest.raises(CheckpointReadError, match=f'checkpoint {cut} is truncated'):
        checkpoint_to_load(cfg)


def test_train_without_the_converted_official_checkpoint_prints_the_conversion(tmp_path, monkeypatch):
    """``uniad_full.py`` starts from ckpts/bevformer_r101_dcn_24ep_nexusflow.pth: without it tools/train.py stops
    before building anything and says how to make it; another missing ``load_from`` says to train its config first."""
    monkeypatch.chdir(tmp_path)  # no ckpts/ here
    train = load_tool('train')
    with pytest.raises(FileNotFoundError) as err:
        train.main([str(REPO / 'configs/uniad_nexusflow/uniad_full.py'), '--work-dir', str(tmp_path / 'run')])
    message = str(err.value)
    assert message.startswith('load_from=ckpts/bevformer_r101_dcn_24ep_nexusflow.pth does not exist; it is an '
                              'official checkpoint converted for this project: download https://github.com/zhiqi-li/'
                              'storage/releases/download/v1.0/bevformer_r101_dcn_24ep.pth to ckpts/, then run')
    assert 'python tools/model_converters/bevformer_to_nexusflow.py ckpts/bevformer_r101_dcn_24ep.pth ' \
           'ckpts/bevformer_r101_dcn_24ep_nexusflow.pth' in message
    cfg = train.build_config(train.parse_args([SGEO, '--work-dir', str(tmp_path / 'run'),
                                               '--cfg-options', 'load_from=work_dirs/nowhere/epoch_6.pth']))
    with pytest.raises(FileNotFoundError, match=r'load_from=work_dirs/nowhere/epoch_6.pth does not exist; train the '
                                                r'config it comes from first'):
        checkpoint_to_load(cfg)


def test_runner_saves_through_the_atomic_hook_and_resumes_with_weights_only(tmp_path):
    """The hook's checkpoints load with torch's default weights_only=True and resume the message hub."""
    import uuid

    from mmengine.model import BaseModel
    from mmengine.runner import Runner
    from torch.utils.data import DataLoader

    class Toy(BaseModel):

        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(2, 1)

        def forward(self, inputs, data_samples=None, mode='tensor'):
            return dict(loss=self.fc(inputs).pow(2).mean())

    def toy_runner(**kwargs):
        return Runner(model=Toy(), work_dir=str(tmp_path), experiment_name=f'atomic-{uuid.uuid4().hex}',
                      train_dataloader=DataLoader([dict(inputs=torch.ones(2))] * 2, batch_size=1),
                      train_cfg=dict(by_epoch=True, max_epochs=3),
                      optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
                      default_hooks=dict(checkpoint=dict(type='NexusFlowAtomicCheckpointHook', interval=1,
                                                         max_keep_ckpts=2)),
                      default_scope='mmdet3d', **kwargs)

    runner = toy_runner()
    runner.train()
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['epoch_2.pth', 'epoch_3.pth']
    assert not list(tmp_path.glob('.*.tmp'))
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / 'epoch_3.pth')
    assert set(load_state_dict_from(str(tmp_path / 'epoch_3.pth'))) == {'fc.weight', 'fc.bias'}
    saved = torch.load(tmp_path / 'epoch_3.pth', weights_only=True)
    assert saved['message_hub']['log_scalars']['train/loss'] == dict(
        log_history=runner.message_hub.get_scalar('train/loss').data[0].tolist(),
        count_history=[1] * 6, max_length=1000000)

    resumed = toy_runner(resume=True, load_from=str(tmp_path / 'epoch_3.pth'))
    resumed.train()  # nothing left to train: loads the checkpoint and stops
    loss = resumed.message_hub.get_scalar('train/loss')
    assert isinstance(loss, HistoryBuffer) and loss.data[0].tolist() == saved['message_hub']['log_scalars'][
        'train/loss']['log_history']


def test_old_full_checkpoints_get_one_clear_message(tmp_path):
    old = tmp_path / 'old.pth'
    hub = dict(log_scalars={'loss': HistoryBuffer([1.0], [1])})
    torch.save(dict(state_dict={'w': torch.zeros(1)}, message_hub=hub), old)
    with pytest.raises(CheckpointReadError, match=rf"checkpoint {old} holds Python objects that "
                                                  rf"torch.load\(weights_only=True\), torch's default, refuses "
                                                  rf"\(first refused: mmengine.logging.history_buffer.HistoryBuffer\)"
                                                  rf".*TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1"):
        load_state_dict_from(str(old))

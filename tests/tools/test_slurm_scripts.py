"""tools/slurm_train.sh and tools/slurm_test.sh build mmdet3d's srun command line (checked with a fake srun)."""
import os
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / 'tools'


@pytest.fixture
def fake_srun(tmp_path):
    """A ``srun`` on PATH that records its arguments (one per line) and the PYTHONPATH it was given, runs nothing."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    record = tmp_path / 'srun_args.txt'
    script = bin_dir / 'srun'
    script.write_text(f'#!/usr/bin/env bash\nprintf "%s\\n" "PYTHONPATH=$PYTHONPATH" "$@" > {record}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)

    def run(tool, *args, **env):
        full_env = dict(os.environ, PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}', PYTHONPATH='/extra', **env)
        proc = subprocess.run(['bash', str(TOOLS / tool), *args], env=full_env, capture_output=True, text=True,
                              cwd=tmp_path)
        return proc, (record.read_text().splitlines() if record.exists() else None)
    return run


def srun_options(gpus, per_node, cpus, partition, job):
    return ['-p', partition, f'--job-name={job}', f'--gres=gpu:{per_node}', f'--ntasks={gpus}',
            f'--ntasks-per-node={per_node}', f'--cpus-per-task={cpus}', '--kill-on-bad-exit=1']


def test_slurm_train_command_line(fake_srun):
    proc, args = fake_srun('slurm_train.sh', 'gpu', 'nf', 'configs/a b.py', 'work_dirs/x', '--resume',
                           '--cfg-options', 'train_cfg.max_epochs=2', GPUS='16', CPUS_PER_TASK='3',
                           SRUN_ARGS='--quotatype=auto --mem=0', PYTHON='python3')
    assert proc.returncode == 0, proc.stderr
    assert args[0] == f'PYTHONPATH={REPO}:/extra'
    assert args[1:] == srun_options(16, 8, 3, 'gpu', 'nf') + [
        '--quotatype=auto', '--mem=0', 'python3', '-u', str(TOOLS / 'train.py'), 'configs/a b.py', '--work-dir',
        'work_dirs/x', '--launcher', 'slurm', '--resume', '--cfg-options', 'train_cfg.max_epochs=2']


def test_slurm_test_command_line_with_defaults(fake_srun):
    proc, args = fake_srun('slurm_test.sh', 'p1', 'job', 'cfg.py', 'ckpt.pth', '--work-dir', 'out')
    assert proc.returncode == 0, proc.stderr
    assert args[1:] == srun_options(8, 8, 5, 'p1', 'job') + [
        'python', '-u', str(TOOLS / 'test.py'), 'cfg.py', 'ckpt.pth', '--launcher', 'slurm', '--work-dir', 'out']


@pytest.mark.parametrize('tool,last', [('slurm_train.sh', 'WORK_DIR'), ('slurm_test.sh', 'CHECKPOINT')])
def test_missing_arguments_print_the_usage(fake_srun, tool, last):
    proc, args = fake_srun(tool, 'gpu', 'job', 'cfg.py')
    assert proc.returncode == 2 and args is None
    assert 'usage: ' in proc.stderr and f'PARTITION JOB_NAME CONFIG {last}' in proc.stderr

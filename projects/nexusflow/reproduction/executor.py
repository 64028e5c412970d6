"""Runs the stages of a reproduction in order, skipping finished ones, with progress and an ETA of the table.

The time of a stage counts every attempt: an interrupted training leaves ``ELAPSED.json`` (updated at every
epoch), which the attempt that finishes it adds to its own duration.
"""
import functools
import json
import os
import os.path as osp
import platform
import re
import subprocess
import time
from typing import Callable, Dict, Iterable, List, Optional, Sequence

from .stages import Stage, read_done, write_done

ELAPSED = 'ELAPSED.json'
EPOCH_LINE = re.compile(r'Epoch\(train\)\s*\[(\d+)\]\[\s*(\d+)/(\d+)\]')
ETA = re.compile(r'\beta: (\S+)')  # mmengine's estimate of the training's remaining time


def run_subprocess(command: Sequence[str], log_path: str, on_line: Callable[[str], None]) -> int:
    """Run ``command``, appending its merged output to ``log_path`` and passing each line to ``on_line``."""
    with open(log_path, 'a') as log:
        log.write(f'\n$ {" ".join(command)}\n')
        log.flush()
        with subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              bufsize=1) as proc:
            for line in proc.stdout:
                log.write(line)
                on_line(line.rstrip('\n'))
            return proc.wait()


@functools.lru_cache(maxsize=None)
def machine() -> Dict[str, object]:
    """What a stage ran on, recorded in its ``DONE.json``: CPU floating-point results (and so a training's exact
    numbers) depend on the processor's vector instructions and the torch build, not only on the seed."""
    import torch
    cpu = platform.processor()
    if osp.isfile('/proc/cpuinfo'):
        with open('/proc/cpuinfo') as f:
            cpu = next((line.split(':', 1)[1].strip() for line in f if line.startswith('model name')), cpu)
    return dict(cpu=cpu, cpu_capability=torch.backends.cpu.get_cpu_capability(), cores=os.cpu_count(),
                torch=torch.__version__)


def format_duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return '?'
    minutes = int(round(seconds / 60))
    return f'{minutes // 60}h{minutes % 60:02d}m' if minutes >= 60 else f'{minutes}m'


def elapsed_before(stage: Stage) -> float:
    """Seconds an interrupted earlier attempt at ``stage`` had spent (``ELAPSED.json``, written at every epoch)."""
    path = osp.join(stage.work_dir, ELAPSED)
    if not osp.isfile(path):
        return 0.0
    with open(path) as f:
        return float(json.load(f)['seconds'])


def record_elapsed(stage: Stage, seconds: float) -> None:
    os.makedirs(stage.work_dir, exist_ok=True)
    tmp = osp.join(stage.work_dir, ELAPSED + '.tmp')
    with open(tmp, 'w') as f:
        json.dump(dict(seconds=round(seconds, 1)), f)
    os.replace(tmp, osp.join(stage.work_dir, ELAPSED))


class Executor:
    """Executes stages; a finished stage (``DONE.json``) is never redone.

    Args:
        out_dir (str): the reproduction's output folder (logs go to ``out_dir/logs``).
        runner (callable): ``runner(command, log_path, on_line) -> returncode``; the default runs a subprocess.
            Tests pass a fake one.
        echo (callable): where progress lines go.
        estimates (dict): seconds per stage kind used for the ETA before a stage of that kind has finished.
    """

    def __init__(self, out_dir: str, runner: Callable = run_subprocess, echo: Callable[[str], None] = print,
                 estimates: Optional[Dict[str, float]] = None) -> None:
        self.out_dir, self.runner, self.echo = out_dir, runner, echo
        self.estimates = dict(estimates or {})

    def _durations(self, stages: Iterable[Stage]) -> Dict[str, List[float]]:
        measured: Dict[str, List[float]] = {}
        for stage in stages:
            done = read_done(stage.work_dir)
            if done is not None and done.get('ran', True):
                measured.setdefault(stage.kind + ':' + stage.row, []).append(done['seconds'])
                measured.setdefault(stage.kind, []).append(done['seconds'])
        return measured

    def eta(self, stages: Sequence[Stage]) -> Optional[float]:
        """Seconds left for the unfinished ``stages``: the mean measured time of finished stages of the same row
        and kind, else of the same kind, else ``estimates``; None if a kind has no figure at all."""
        measured = self._durations(stages)
        total = 0.0
        for stage in stages:
            if stage.done:
                continue
            figures = measured.get(stage.kind + ':' + stage.row) or measured.get(stage.kind)
            if figures:
                total += sum(figures) / len(figures)
            elif stage.kind in self.estimates:
                total += self.estimates[stage.kind]
            else:
                return None
        return total

    def run(self, stages: Sequence[Stage], on_done: Optional[Callable[[Stage], None]] = None) -> None:
        """Run every unfinished stage in order, calling ``on_done(stage)`` after each; raise ``RuntimeError`` naming
        the log of a failed command."""
        os.makedirs(osp.join(self.out_dir, 'logs'), exist_ok=True)
        pending = [stage for stage in stages if not stage.done]
        self.echo(f'{len(stages) - len(pending)} of {len(stages)} stages already done; '
                  f'ETA of the rest {format_duration(self.eta(stages))}')
        for index, stage in enumerate(pending):
            self.echo(f'[{index + 1}/{len(pending)}] {stage.kind} {stage.key}  (table ETA '
                      f'{format_duration(self.eta(stages))})')
            start = time.time()
            if stage.reuse():
                write_done(stage, dict(stage.finish(), seconds=0.0, ran=False, finished=time.ctime()))
                self.echo(f'    reused existing outputs of {stage.key}')
            else:
                self._execute(stage, start)
            if on_done is not None:
                on_done(stage)

    def _execute(self, stage: Stage, start: float) -> None:
        prior = elapsed_before(stage)
        command = stage.command()
        log_path = osp.join(self.out_dir, 'logs', stage.key.replace('/', '_') + '.log')
        code = self.runner(command, log_path, self._progress(stage, start, prior))
        if code != 0:
            raise RuntimeError(f'{stage.key} failed (exit code {code}): see {log_path}; run the same command '
                               'again to continue where it stopped')
        record = stage.finish()
        record.update(seconds=round(prior + time.time() - start, 1), ran=True, finished=time.ctime(),
                      command=' '.join(command), machine=machine())
        write_done(stage, record)
        self.echo(f'    done in {format_duration(record["seconds"])}')

    def _progress(self, stage: Stage, start: float, prior: float) -> Callable[[str], None]:
        last = {'epoch': None}

        def on_line(line: str) -> None:
            match = EPOCH_LINE.search(line)
            if match is None:
                return
            epoch, it, total = (int(g) for g in match.groups())
            if last['epoch'] != epoch or it == total:
                last['epoch'] = epoch
                record_elapsed(stage, prior + time.time() - start)
                eta = ETA.search(line)
                self.echo(f'    {stage.key}: epoch {epoch} iter {it}/{total}, '
                          f'{format_duration(time.time() - start)} so far'
                          + (f', {eta.group(1)} left (mmengine)' if eta else ''))
        return on_line

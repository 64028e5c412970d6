"""The stages of a reproduction and the commands that run them (the project's own tools, in subprocesses).

Layout under the output folder ``OUT``::

    OUT/pretrain/                       tools/train.py work dir of the (first) pretraining stage (+ DONE.json)
    OUT/pretrain_<name>/                a later pretraining stage, started from the previous one
                                        (with ``pretrain.per_seed``: one chain per seed, ``OUT/pretrain/seed<k>/``, ...)
    OUT/runs/<row>/seed<k>/train/       tools/train.py work dir of one run (+ DONE.json with the final checkpoint)
    OUT/runs/<row>/seed<k>/test/        tools/test.py work dir on the held-out val scenes (+ metrics.json, DONE.json)
    OUT/runs/<row>/seed<k>/analysis/    tools/analyze_features.py output (+ DONE.json)
    OUT/runs/<row>/seed<k>/analysis_start/  the same for the checkpoint a run starts from (rows with init=<row>)
    OUT/logs/<stage key>.log            the full output of every command

A stage is done when its ``DONE.json`` exists; it records the command, the finish time and the duration. A
training stage that was interrupted is continued with ``--resume`` (mmengine's latest checkpoint of its work dir);
one that never wrote a checkpoint starts again from its initial weights.
"""
import functools
import glob
import json
import os
import os.path as osp
import sys
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

from mmengine.config import Config

from .protocol import DataSpec, Protocol, Run

DONE = 'DONE.json'
METRICS = 'metrics.json'
DATA_SPEC = 'reproduce_data.json'


def data_ready(spec: DataSpec) -> bool:
    """Whether ``spec.root`` holds exactly the set of ``spec`` (True), nothing (False); raise for anything else.

    A set written by this harness carries its arguments in ``<root>/reproduce_data.json``.
    """
    if not osp.isdir(spec.root) or not os.listdir(spec.root):
        return False
    path = osp.join(spec.root, DATA_SPEC)
    if not osp.isfile(path):
        raise FileExistsError(f'{spec.root} is not empty and was not written by tools/reproduce.py (no {DATA_SPEC}); '
                              'move it away or point the protocol\'s data root elsewhere')
    with open(path) as f:
        found = json.load(f)
    if found != spec.as_dict():
        raise FileExistsError(f'{spec.root} holds a synthetic set made with {found}, but the protocol asks for '
                              f'{spec.as_dict()}; move it away or change the protocol\'s data root')
    return True


def data_options(root: str, config: str) -> Dict[str, str]:
    """``--cfg-options`` that point every loader of ``config`` at the synthetic set in ``root``.

    Found in the config itself: the (possibly wrapped) datasets of the three dataloaders. The metrics need no
    option: they read the root and the info file of the dataset they evaluate (``dataset_meta``).
    """
    root = root.rstrip('/') + '/'
    cfg = Config.fromfile(config)
    options = {}
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        key, dataset = f'{loader}.dataset', cfg.get(loader, {}).get('dataset')
        while isinstance(dataset, dict) and 'data_root' not in dataset and isinstance(dataset.get('dataset'), dict):
            key, dataset = key + '.dataset', dataset['dataset']
        if isinstance(dataset, dict) and 'data_root' in dataset:
            options[f'{key}.data_root'] = root
    return options


def cfg_options(options: Dict[str, object]) -> List[str]:
    """``{key: value}`` -> ``['--cfg-options', 'key=value', ...]`` (values in mmengine's DictAction syntax)."""
    if not options:
        return []
    items = []
    for key, value in options.items():
        if isinstance(value, (list, tuple)):
            value = '[' + ','.join(str(v) for v in value) + ']'
        items.append(f'{key}={value}')
    return ['--cfg-options'] + items


def read_done(work_dir: str) -> Optional[dict]:
    path = osp.join(work_dir, DONE)
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def last_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint named in mmengine's ``last_checkpoint`` file of ``work_dir``, if it exists."""
    path = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        ckpt = f.read().strip()
    return ckpt if ckpt and osp.isfile(ckpt) else None


def test_metrics(test_dir: str) -> Dict[str, float]:
    """The metrics of the newest ``tools/test.py`` run in ``test_dir`` (mmengine's ``<timestamp>/<timestamp>.json``)."""
    logs = sorted(glob.glob(osp.join(test_dir, '*', '*.json')), key=osp.getmtime)
    for path in reversed(logs):
        with open(path) as f:
            lines = [json.loads(line) for line in f if line.strip()]
        if lines:
            return {k: v for k, v in lines[-1].items() if isinstance(v, (int, float))}
    raise FileNotFoundError(f'no metrics json of tools/test.py under {test_dir}/<timestamp>/; see its log in logs/')


@dataclass
class Stage:
    """One resumable step: ``kind`` is ``data``, ``train``, ``test`` or ``analysis``."""
    key: str
    kind: str
    work_dir: str
    command: Callable[[], List[str]]
    finish: Callable[[], dict] = field(default=lambda: {})
    row: str = ''
    reuse: Callable[[], bool] = field(default=lambda: False)

    @property
    def done(self) -> bool:
        return read_done(self.work_dir) is not None


class StagePlanner:
    """Builds the stages of a protocol's runs under ``out_dir`` (commands use ``python`` and the repo's tools)."""

    def __init__(self, protocol: Protocol, out_dir: str, python: str = sys.executable) -> None:
        self.protocol, self.out_dir, self.python = protocol, out_dir, python

    def run_dir(self, run: Run) -> str:
        return osp.join(self.out_dir, 'runs', run.row.name, f'seed{run.seed}')

    def data_stage(self, spec: DataSpec, key: str) -> Stage:
        def command() -> List[str]:
            width, height = spec.img_size
            mix = ['--vehicle-mix'] + [f'{name}={weight}' for name, weight in spec.vehicle_mix] if spec.vehicle_mix \
                else []
            return [self.python, 'tools/create_data.py', 'synthetic', '--out-dir', spec.root, '--scenes-per-city',
                    str(spec.scenes_per_city), '--samples-per-scene', str(spec.samples_per_scene), '--seed',
                    str(spec.seed), '--img-size', str(width), str(height), '--with-infos'] + mix

        def finish() -> dict:
            with open(osp.join(spec.root, DATA_SPEC), 'w') as f:
                json.dump(spec.as_dict(), f, indent=1)
            return dict(spec=spec.as_dict())
        return Stage(key=key, kind='data', work_dir=osp.join(self.out_dir, 'data', key), command=command,
                     finish=finish, reuse=lambda: data_ready(spec))

    def train_stage(self, key: str, config: str, work_dir: str, options: Dict[str, object],
                    init: Callable[[], Optional[str]], row: str = '') -> Stage:
        def command() -> List[str]:
            opts = dict(options)
            resume = last_checkpoint(work_dir) is not None
            if not resume and init() is not None:
                opts['load_from'] = init()
            return ([self.python, 'tools/train.py', config, '--work-dir', work_dir] + (['--resume'] if resume else [])
                    + cfg_options(opts))

        def finish() -> dict:
            ckpt = last_checkpoint(work_dir)
            if ckpt is None:
                raise RuntimeError(f'{key}: tools/train.py ended without a checkpoint in {work_dir}')
            return dict(checkpoint=ckpt)
        return Stage(key=key, kind='train', work_dir=work_dir, command=command, finish=finish, row=row)

    def pretrain_dir(self, index: int, seed: int = 0) -> str:
        """Work dir of pretraining stage ``index`` (of the chain of ``seed`` if the protocol pretrains per seed)."""
        name = self.protocol.pretrain_stages[index].name
        work_dir = osp.join(self.out_dir, 'pretrain' + (f'_{name}' if name else ''))
        return osp.join(work_dir, f'seed{seed}') if self.protocol.pretrain_per_seed else work_dir

    def chain_seed(self, seed: int) -> int:
        """The seed of the pretraining chain that the runs of ``seed`` start from."""
        return seed if self.protocol.pretrain_per_seed else 0

    def pretrain_stages(self, seed: int = 0) -> List[Stage]:
        """The pretraining chain (of ``seed``): each stage starts from the previous one's final checkpoint."""
        spec = self.protocol.pretrain_data
        seed = self.chain_seed(seed)
        stages = []
        for index, stage in enumerate(self.protocol.pretrain_stages):
            options = dict(data_options(spec.root, stage.config), **{'randomness.seed': seed})
            init = functools.partial(_final, self.pretrain_dir(index - 1, seed)) if index else (lambda: None)
            work_dir = self.pretrain_dir(index, seed)
            stages.append(self.train_stage(osp.relpath(work_dir, self.out_dir), stage.config, work_dir, options,
                                           init=init))
        return stages

    def init_checkpoint(self, run: Run) -> Optional[str]:
        """The checkpoint a run starts from: the pretraining chain's (of its seed), a phase-1 run's, or None."""
        if run.row.init is None:
            return None
        work_dir = (self.pretrain_dir(len(self.protocol.pretrain_stages) - 1, run.seed) if run.row.init == 'pretrain'
                    else osp.join(self.run_dir(Run(self.protocol.row(run.row.init), run.seed)), 'train'))
        return _final(work_dir, run.key)

    def run_stages(self, run: Run, analysis: bool = True) -> List[Stage]:
        """Train, test (and analyse) one run."""
        base = self.run_dir(run)
        data = data_options(self.protocol.data.root, run.row.config)
        options = dict(data, **self.protocol.options(run.row))
        options['randomness.seed'] = run.seed
        # test and analysis build the model the run trained: its data plus every model option of the protocol / row
        # (e.g. the track head's inference-time track_radius), without the training-only ones
        evaluated = dict(data, **{key: value for key, value in options.items() if key.startswith('model.')})
        train = self.train_stage(f'{run.key}/train', run.row.config, osp.join(base, 'train'), options,
                                 init=lambda: self.init_checkpoint(run), row=run.row.name)
        test_dir = osp.join(base, 'test')

        def checkpoint() -> str:
            return read_done(train.work_dir)['checkpoint']

        def test_command() -> List[str]:
            return [self.python, 'tools/test.py', run.row.config, checkpoint(), '--work-dir', test_dir] + \
                cfg_options(evaluated)

        def test_finish() -> dict:
            metrics = test_metrics(test_dir)
            with open(osp.join(test_dir, METRICS), 'w') as f:
                json.dump(metrics, f, indent=1)
            return dict(metrics=METRICS)
        stages = [train, Stage(key=f'{run.key}/test', kind='test', work_dir=test_dir, command=test_command,
                               finish=test_finish, row=run.row.name)]
        if not analysis:
            return stages
        stages.append(self._analysis_stage(run, 'analysis', checkpoint, evaluated))
        if run.row.init not in (None, 'pretrain'):
            # the run's model as it starts: the other row's checkpoint, the parts it lacks (a plug-in) as initialised
            stages.append(self._analysis_stage(run, 'analysis_start', lambda: self.init_checkpoint(run), evaluated))
        return stages

    def _analysis_stage(self, run: Run, name: str, checkpoint: Callable[[], str], options: Dict[str, object]) -> Stage:
        work_dir = osp.join(self.run_dir(run), name)

        def command() -> List[str]:
            return [self.python, 'tools/analyze_features.py', run.row.config, checkpoint(), '--out-dir', work_dir,
                    '--work-dir', osp.join(work_dir, 'logs')] + cfg_options(options)
        return Stage(key=f'{run.key}/{name}', kind='analysis', work_dir=work_dir, command=command, row=run.row.name)

    def plan(self, runs: List[Run], analysis: bool = True) -> List[Stage]:
        """Every stage of ``runs`` in execution order: data, then each run's train/test/analysis, the pretraining
        chain (or the chain of the run's seed) before the first run that starts from it."""
        stages = [self.data_stage(self.protocol.data, 'protocol')]
        chains = set()
        for run in runs:
            chain = self.chain_seed(run.seed)
            if run.row.init == 'pretrain' and chain not in chains:
                if not chains:
                    stages.append(self.data_stage(self.protocol.pretrain_data, 'pretrain'))
                chains.add(chain)
                stages += self.pretrain_stages(chain)
            stages += self.run_stages(run, analysis)
        return stages


def _final(work_dir: str, user: str = 'the next pretraining stage') -> str:
    """The final checkpoint of the finished training in ``work_dir`` (``RuntimeError`` if it has not finished)."""
    done = read_done(work_dir)
    if done is None:
        raise RuntimeError(f'{user} starts from {work_dir}, which has not finished')
    return done['checkpoint']


def write_done(stage: Stage, record: dict) -> None:
    """Mark ``stage`` finished: ``DONE.json`` written atomically into its work dir."""
    os.makedirs(stage.work_dir, exist_ok=True)
    tmp = osp.join(stage.work_dir, DONE + '.tmp')
    with open(tmp, 'w') as f:
        json.dump(record, f, indent=1)
    os.replace(tmp, osp.join(stage.work_dir, DONE))

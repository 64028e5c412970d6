"""A reproduction protocol: the synthetic sets, the shared pretraining stage and the rows of a results table.

A protocol is an mmengine config file (``configs/uniad_nexusflow/reproduce/*.py``) with:

* ``data``: the synthetic nuScenes set every row trains on (its ``synth_train`` scenes) and is evaluated on (its
  held-out ``synth_val`` scenes): ``dict(root, scenes_per_city, samples_per_scene, seed, img_size[, vehicle_mix])``
  (``vehicle_mix``: ``tools/create_data.py synthetic --vehicle-mix`` as a dict, e.g. ``dict(car=0.6, bus=0.2)``);
* ``pretrain`` (optional): ``dict(data=<same keys as data>, config=<train config>[, then=[dict(name, config), ...]]
  [, per_seed=False])``, stages on a separate synthetic set: ``config`` first (work dir ``OUT/pretrain``), then every
  ``then`` stage from the previous stage's last checkpoint (``OUT/pretrain_<name>``); the last checkpoint of the
  chain initialises every row whose ``init`` is ``'pretrain'``. By default the chain runs once, with seed 0, and
  every row and seed starts from it (as every method of a paper fine-tunes the same pretrained model); with
  ``per_seed=True`` each seed of the table trains its own chain with that seed (``OUT/pretrain/seed<k>``, ...), so
  the seed std also covers the pretraining;
* ``row_options`` (optional): ``--cfg-options`` given to every row's training (e.g. a frozen pretrained backbone);
* ``config_options`` (optional): ``{pattern: options}``, ``--cfg-options`` given to the rows whose config file name
  matches the glob ``pattern`` (e.g. an option only the NexusFlow configs have), after ``row_options``;
* ``rows``: a list of ``dict(name, label, config, seeds, init='pretrain', options={}, group='')``; ``init`` is
  ``'pretrain'``, ``None`` (from scratch) or the name of another row whose checkpoint of the same seed starts this
  row (phase 2 of two-phase training);
* ``comparisons`` (optional): a list of ``dict(name, row, reference, metrics[, paired=False])`` that the report
  evaluates (``comparisons.py``): whether ``reference``'s mean differs from ``row``'s by more than 3 seed stds on
  each of ``metrics`` (keys of :func:`metric_names`), or, with ``paired=True``, ``row - reference`` seed by seed.

:func:`load_protocol` validates all of it and :func:`expand_runs` turns a selection of rows and seeds into the
ordered list of runs, phase-1 dependencies first.
"""
import fnmatch
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config

from ..datasets.synthetic.styles import vehicle_weights

CITIES = ('boston', 'singapore')
TRACK_KEYS = ('amota', 'amotp', 'recall', 'ids')
MAP_KEYS = ('lanes_iou', 'drivable_iou', 'divider_iou', 'crossing_iou')
DATA_KEYS = ('root', 'scenes_per_city', 'samples_per_scene', 'seed', 'img_size')
OPTIONAL_DATA_KEYS = ('vehicle_mix', )
ROW_KEYS = {'name', 'label', 'config', 'seeds', 'init', 'options', 'group'}


def metric_names() -> List[str]:
    """The metric keys of the tables, overall then per city (``track/amota``, ``track/boston/amota``, ...)."""
    names = [f'track/{k}' for k in TRACK_KEYS] + [f'map/{k}' for k in MAP_KEYS]
    for city in CITIES:
        names += [f'track/{city}/{k}' for k in TRACK_KEYS] + [f'map/{city}/{k}' for k in MAP_KEYS]
    return names


def metric_digits(metric: str) -> int:
    """Decimals of ``metric`` in the tables: counts (IDS) 0, map IoU (in %) 1, tracking scores 3."""
    return 0 if metric.endswith('/ids') else 1 if metric.startswith('map/') else 3


@dataclass(frozen=True)
class DataSpec:
    """Arguments of ``tools/create_data.py synthetic`` for one synthetic set."""
    root: str
    scenes_per_city: int
    samples_per_scene: int
    seed: int
    img_size: Tuple[int, int]
    vehicle_mix: Optional[Tuple[Tuple[str, float], ...]] = None

    def as_dict(self) -> dict:
        spec = dict(root=self.root, scenes_per_city=self.scenes_per_city, samples_per_scene=self.samples_per_scene,
                    seed=self.seed, img_size=list(self.img_size))
        if self.vehicle_mix is not None:
            spec['vehicle_mix'] = dict(self.vehicle_mix)
        return spec


@dataclass(frozen=True)
class Row:
    """One row of the table: a training config run for each of its seeds."""
    name: str
    label: str
    config: str
    seeds: Tuple[int, ...]
    init: Optional[str] = 'pretrain'
    options: Dict[str, object] = field(default_factory=dict)
    group: str = ''


@dataclass(frozen=True)
class PretrainStage:
    """One training of the pretraining chain: ``name`` ('' for the first) and its config."""
    name: str
    config: str


@dataclass(frozen=True)
class Comparison:
    """Two rows compared on some metrics: ``reference`` against ``row``, by their means or seed by seed."""
    name: str
    row: str
    reference: str
    metrics: Tuple[str, ...]
    paired: bool = False


@dataclass(frozen=True)
class Protocol:
    name: str
    path: str
    data: DataSpec
    rows: Tuple[Row, ...]
    pretrain_data: Optional[DataSpec] = None
    pretrain_stages: Tuple[PretrainStage, ...] = ()
    pretrain_per_seed: bool = False
    row_options: Dict[str, object] = field(default_factory=dict)
    config_options: Tuple[Tuple[str, Dict[str, object]], ...] = ()
    comparisons: Tuple[Comparison, ...] = ()

    def row(self, name: str) -> Row:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f'protocol {self.path} has no row {name!r}; its rows: {[r.name for r in self.rows]}')

    def options(self, row: Row) -> Dict[str, object]:
        """The ``--cfg-options`` of ``row``'s training: ``row_options``, matching ``config_options``, its own."""
        options = dict(self.row_options)
        for pattern, extra in self.config_options:
            if _config_matches(row, pattern):
                options.update(extra)
        options.update(row.options)
        return options


@dataclass(frozen=True)
class Run:
    """One training of one row with one seed."""
    row: Row
    seed: int

    @property
    def key(self) -> str:
        return f'{self.row.name}/seed{self.seed}'


def _data_spec(value, where: str) -> DataSpec:
    if not isinstance(value, dict) or not set(DATA_KEYS) <= set(value) \
            or not set(value) <= set(DATA_KEYS + OPTIONAL_DATA_KEYS):
        raise ValueError(f'{where} must be dict({", ".join(DATA_KEYS)}[, {", ".join(OPTIONAL_DATA_KEYS)}]), '
                         f'got {value!r}')
    size = tuple(value['img_size'])
    if len(size) != 2:
        raise ValueError(f'{where}.img_size must be (W, H), got {value["img_size"]!r}')
    mix = value.get('vehicle_mix')
    if mix is not None:
        try:
            vehicle_weights(mix)
        except (TypeError, ValueError) as error:
            raise ValueError(f'{where}.vehicle_mix: {error}') from None
        mix = tuple((str(name), float(weight)) for name, weight in sorted(mix.items()))
    return DataSpec(str(value['root']), int(value['scenes_per_city']), int(value['samples_per_scene']),
                    int(value['seed']), (int(size[0]), int(size[1])), mix)


def _row(value, index: int, path: str) -> Row:
    where = f'{path}: rows[{index}]'
    if not isinstance(value, dict) or not {'name', 'label', 'config', 'seeds'} <= set(value) \
            or not set(value) <= ROW_KEYS:
        raise ValueError(f'{where} must be dict(name, label, config, seeds[, init, options, group]), got {value!r}')
    seeds = value['seeds']
    seeds = tuple(range(seeds)) if isinstance(seeds, int) else tuple(int(s) for s in seeds)
    if not seeds:
        raise ValueError(f'{where} ({value["name"]}): seeds must be a count >= 1 or a non-empty list')
    if not osp.isfile(value['config']):
        raise FileNotFoundError(f'{where} ({value["name"]}): config {value["config"]} does not exist '
                                '(paths are relative to the repository root)')
    return Row(name=str(value['name']), label=str(value['label']), config=str(value['config']), seeds=seeds,
               init=value.get('init', 'pretrain'), options=dict(value.get('options', {})),
               group=str(value.get('group', '')))


def _pretrain_stages(pretrain, path: str) -> Tuple[PretrainStage, ...]:
    if not set(pretrain) <= {'data', 'config', 'then', 'per_seed'}:
        raise ValueError(f'{path}: pretrain must be dict(data, config[, then, per_seed]), got keys {sorted(pretrain)}')
    if not isinstance(pretrain.get('per_seed', False), bool):
        raise ValueError(f'{path}: pretrain.per_seed must be True or False, got {pretrain["per_seed"]!r}')
    stages = [PretrainStage('', pretrain.get('config'))]
    for index, stage in enumerate(pretrain.get('then', [])):
        if not isinstance(stage, dict) or set(stage) != {'name', 'config'} or not str(stage['name']).isidentifier():
            raise ValueError(f'{path}: pretrain.then[{index}] must be dict(name=<identifier>, config=...), '
                             f'got {stage!r}')
        stages.append(PretrainStage(str(stage['name']), stage['config']))
    names = [stage.name for stage in stages]
    if len(set(names)) != len(names):
        raise ValueError(f'{path}: pretrain.then names must be unique, got {names[1:]}')
    for stage in stages:
        if stage.config is None or not osp.isfile(stage.config):
            raise FileNotFoundError(f'{path}: pretraining config {stage.config} does not exist')
    return tuple(stages)


def _config_matches(row: Row, pattern: str) -> bool:
    """Whether ``row``'s config file name matches the glob ``pattern`` of ``config_options``."""
    return fnmatch.fnmatch(osp.basename(row.config), pattern)


def _config_options(value, rows: Tuple[Row, ...], path: str) -> Tuple[Tuple[str, Dict[str, object]], ...]:
    if not isinstance(value, dict) or not all(isinstance(options, dict) for options in value.values()):
        raise ValueError(f'{path}: config_options must be {{pattern: {{key: value}}}}, got {value!r}')
    for pattern in value:
        if not any(_config_matches(row, pattern) for row in rows):
            raise ValueError(f'{path}: config_options pattern {pattern!r} matches no row\'s config file name '
                             f'({sorted({osp.basename(row.config) for row in rows})}); fix or remove it')
    return tuple((str(pattern), dict(options)) for pattern, options in value.items())


def _comparisons(value, names: List[str], path: str) -> Tuple[Comparison, ...]:
    keys = {'name', 'row', 'reference', 'metrics', 'paired'}
    known = metric_names()
    comparisons = []
    for index, entry in enumerate(value):
        where = f'{path}: comparisons[{index}]'
        if not isinstance(entry, dict) or not keys - {'paired'} <= set(entry) or not set(entry) <= keys:
            raise ValueError(f'{where} must be dict(name, row, reference, metrics[, paired]), got {entry!r}')
        for key in ('row', 'reference'):
            if entry[key] not in names:
                raise ValueError(f'{where}: {key} {entry[key]!r} is not a row of the protocol ({names})')
        metrics = entry['metrics']
        unknown = [m for m in metrics if m not in known] if isinstance(metrics, (list, tuple)) else [metrics]
        if unknown or not metrics:
            raise ValueError(f'{where}: metrics must be a non-empty list of table metrics such as '
                             f"'track/boston/amota' or 'map/singapore/lanes_iou'; unknown: {unknown}")
        if not isinstance(entry.get('paired', False), bool):
            raise ValueError(f'{where}: paired must be True or False, got {entry["paired"]!r}')
        comparisons.append(Comparison(str(entry['name']), entry['row'], entry['reference'], tuple(metrics),
                                      entry.get('paired', False)))
    return tuple(comparisons)


def load_protocol(path: str) -> Protocol:
    """Read and validate the protocol config at ``path`` (see the module docstring)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'protocol file {path} does not exist; see configs/uniad_nexusflow/reproduce/')
    cfg = Config.fromfile(path)
    for key in ('data', 'rows'):
        if key not in cfg:
            raise KeyError(f'protocol {path} lacks {key!r} (see projects/nexusflow/reproduction/protocol.py)')
    rows = tuple(_row(value, index, path) for index, value in enumerate(cfg.rows))
    names = [row.name for row in rows]
    if len(set(names)) != len(names):
        raise ValueError(f'protocol {path}: row names must be unique, got {names}')
    config_options = _config_options(cfg.get('config_options', {}), rows, path)
    pretrain = cfg.get('pretrain', None)
    pretrain_data, pretrain_stages, per_seed = None, (), False
    if pretrain is not None:
        pretrain_data = _data_spec(pretrain.get('data'), f'{path}: pretrain.data')
        pretrain_stages = _pretrain_stages(pretrain, path)
        per_seed = pretrain.get('per_seed', False)
    for row in rows:
        if row.init == 'pretrain' and pretrain is None:
            raise ValueError(f'{path}: row {row.name!r} starts from the pretraining stage but the protocol has no '
                             "'pretrain'; set init=None to train from scratch")
        if row.init not in (None, 'pretrain') and row.init not in names:
            raise ValueError(f'{path}: row {row.name!r} starts from row {row.init!r}, which is not in the protocol')
        if row.init == row.name:
            raise ValueError(f'{path}: row {row.name!r} cannot start from itself')
    return Protocol(name=osp.splitext(osp.basename(path))[0], path=path, data=_data_spec(cfg.data, f'{path}: data'),
                    rows=rows, pretrain_data=pretrain_data, pretrain_stages=pretrain_stages, pretrain_per_seed=per_seed,
                    row_options=dict(cfg.get('row_options', {})), config_options=config_options,
                    comparisons=_comparisons(cfg.get('comparisons', []), names, path))


def expand_runs(protocol: Protocol, row_names: Optional[Sequence[str]] = None,
                seeds: Optional[Sequence[int]] = None) -> List[Run]:
    """The runs of the selected rows (default: all) and seeds (default: each row's own), dependencies first.

    Seed-major: every row's seed 0, then every row's seed 1, ... so that an interrupted table has whole columns.

    A row that starts from another row's checkpoint pulls in that row's run of the same seed, which is ordered
    before it; every run appears once.
    """
    selected = [protocol.row(name) for name in row_names] if row_names else list(protocol.rows)
    ordered: List[Run] = []

    def add(run: Run, chain: Tuple[str, ...]) -> None:
        if run.row.name in chain:
            raise ValueError(f'rows {" -> ".join(chain + (run.row.name, ))} start from each other in a cycle')
        if run.row.init not in (None, 'pretrain'):
            add(Run(protocol.row(run.row.init), run.seed), chain + (run.row.name, ))
        if run not in ordered:
            ordered.append(run)

    wanted = [(row, int(seed)) for row in selected for seed in (seeds if seeds else row.seeds)]
    for seed in sorted({seed for _, seed in wanted}):
        for row, row_seed in wanted:
            if row_seed == seed:
                add(Run(row, seed), ())
    return ordered

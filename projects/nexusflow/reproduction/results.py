"""Results of a reproduction: per-run figures collected from the stages' outputs, mean +- std per row, a markdown
page and plots.

``results.json``::

    {protocol, generated, rows: {row: {label, group, seeds: {seed: {metrics, mmd, spread, diagnostics, seconds,
                                                                    machine}}}},
     summary: {row: {metric: {mean, std, n}}}, budget: {stage kind: seconds},
     comparisons: [...],                                                            # see comparisons.py
     included: [{path, generated, budget,                                          # with ``--include``
                 repeats: {row/seed<k>: {difference: {metric: now - earlier}, machines: [now, earlier]}}}]}

``metrics`` keeps every number ``tools/test.py`` reported (overall and per city); ``mmd`` the squared MMD
Boston~Singapore (mean over subsets) of each analysed feature set; ``spread`` the mean per-dimension std of
NexusFlow's embeddings and latents over the val scenes at fixed parameters, ``{feature: {start, end}}`` (``start``
from the checkpoint a phase-2 run starts from, its plug-in as initialised); ``diagnostics`` the first and last logged
value of every ``diag/*`` scalar of the training (NexusFlow runs); ``machine`` what the training ran on (CPU,
its vector instructions, torch; None in reports made before it was recorded).
"""
import glob
import json
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence

from .comparisons import SEPARATION, compare, mean_std
from .protocol import CITIES, MAP_KEYS, TRACK_KEYS, Protocol, Run, metric_digits, metric_names
from .stages import METRICS, read_done

MMD_FEATURES = ('taps/track', 'taps/map', 'embeddings/track', 'embeddings/map', 'latents/track', 'latents/map')
SPREAD_FEATURES = MMD_FEATURES[2:]
CITY_PAIR = 'boston~singapore'


def _features(analysis_dir: str) -> Dict[str, dict]:
    path = osp.join(analysis_dir, 'analysis.json')
    if not osp.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)['features']


def _mmd(analysis_dir: str) -> Dict[str, float]:
    return {name: entry['mmd_city'][CITY_PAIR]['mean'] for name, entry in _features(analysis_dir).items()
            if entry['mmd_city'].get(CITY_PAIR) is not None}


def _spread(run_dir: str) -> Dict[str, Dict[str, float]]:
    """``{feature: {start, end}}`` mean per-dimension stds of the NexusFlow features the analyses found."""
    moments = {when: _features(osp.join(run_dir, name)) for when, name in (('start', 'analysis_start'),
                                                                           ('end', 'analysis'))}
    spread = {}
    for feature in SPREAD_FEATURES:
        values = {when: found[feature]['mean_std'] for when, found in moments.items()
                  if 'mean_std' in found.get(feature, {})}
        if values:
            spread[feature] = values
    return spread


def _diagnostics(train_dir: str) -> Dict[str, Dict[str, float]]:
    """``{key: {first, last}}`` of the ``diag/*`` scalars mmengine logged in ``<train_dir>/*/vis_data/scalars.json``."""
    series: Dict[str, List[float]] = {}
    for path in sorted(glob.glob(osp.join(train_dir, '*', 'vis_data', 'scalars.json')), key=osp.getmtime):
        with open(path) as f:
            for line in f:
                if not line.strip():
                    continue
                record = json.loads(line)
                for key, value in record.items():
                    if 'diag/' in key and isinstance(value, (int, float)):
                        series.setdefault(key.split('diag/', 1)[1], []).append(float(value))
    return {key: dict(first=values[0], last=values[-1]) for key, values in series.items()}


def collect_run(run_dir: str) -> Optional[dict]:
    """Figures of one finished run (its test stage done), or None."""
    test_dir = osp.join(run_dir, 'test')
    test = read_done(test_dir)
    if test is None:
        return None
    with open(osp.join(test_dir, METRICS)) as f:
        metrics = json.load(f)
    train = read_done(osp.join(run_dir, 'train')) or {}
    return dict(metrics=metrics, mmd=_mmd(osp.join(run_dir, 'analysis')), spread=_spread(run_dir),
                diagnostics=_diagnostics(osp.join(run_dir, 'train')),
                seconds=dict(train=train.get('seconds'), test=test.get('seconds')), machine=train.get('machine'))


def _read_report(path: str, protocol: Protocol) -> dict:
    """An earlier ``results.json`` of ``protocol`` (one clear error for a missing file or another protocol)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'--include {path}: no such results.json (a report folder of tools/reproduce.py)')
    with open(path) as f:
        earlier = json.load(f)
    if osp.abspath(earlier.get('protocol', '')) != osp.abspath(protocol.path):
        raise ValueError(f'--include {path}: its runs are of protocol {earlier.get("protocol")!r}, not '
                         f'{protocol.path!r}; include only reports of the protocol being reported')
    return earlier


def _differences(now: Dict[str, float], earlier: Dict[str, float]) -> Dict[str, float]:
    """``{metric: now - earlier}`` over the table's metrics both runs have (a repeated run's drift)."""
    return {key: now[key] - earlier[key] for key in metric_names() if key in now and key in earlier}


def summarise(rows: Dict[str, dict]) -> Dict[str, Dict[str, dict]]:
    """``{row: {metric: mean_std}}`` over the seeds of each row of ``results['rows']``."""
    summary = {}
    for name, entry in rows.items():
        seeds = list(entry['seeds'].values())
        stats = {key: mean_std([s['metrics'].get(key, float('nan')) for s in seeds]) for key in metric_names()}
        for feature in MMD_FEATURES:
            stats[f'mmd/{feature}'] = mean_std([s['mmd'].get(feature, float('nan')) for s in seeds])
        for feature in SPREAD_FEATURES:
            for when in ('start', 'end'):
                stats[f'spread/{feature}/{when}'] = mean_std(
                    [s['spread'].get(feature, {}).get(when, float('nan')) for s in seeds])
        summary[name] = stats
    return summary


def collect(protocol: Protocol, runs: Sequence[Run], planner, stages: Sequence, include: Sequence[str] = ()) -> dict:
    """``results.json`` content for ``runs`` (unfinished runs are left out; a row with none is absent); the
    measured compute is summed over ``stages`` (the planner's stages of ``runs``).

    ``include`` lists earlier ``results.json`` files of the same protocol (e.g. a committed report made on another
    machine): their runs of the selected rows that are not on disk join the table; a run on disk wins, and its
    difference to the included one (``now - earlier`` per metric, and both runs' machines) is kept under
    ``included[i]['repeats']``, which
    measures how well a run repeats. The included reports' compute is listed there too, not added to ``budget``
    (shared stages would count twice).
    """
    rows: Dict[str, dict] = {}
    row_of = {run.row.name: run.row for run in runs}
    for run in runs:
        figures = collect_run(planner.run_dir(run))
        if figures is None:
            continue
        entry = rows.setdefault(run.row.name, dict(label=run.row.label, group=run.row.group, seeds={}))
        entry['seeds'][str(run.seed)] = figures
    included = []
    for path in include:
        earlier = _read_report(path, protocol)
        repeats = {}
        for name, entry_earlier in earlier['rows'].items():
            if name not in row_of:
                continue
            entry = rows.setdefault(name, dict(label=row_of[name].label, group=row_of[name].group, seeds={}))
            for seed, figures in entry_earlier['seeds'].items():
                if seed in entry['seeds']:
                    now = entry['seeds'][seed]
                    repeats[f'{name}/seed{seed}'] = dict(
                        difference=_differences(now['metrics'], figures['metrics']),
                        machines=[now.get('machine'), figures.get('machine')])
                else:
                    entry['seeds'][seed] = figures
        included.append(dict(path=path, generated=earlier.get('generated'), budget=earlier.get('budget', {}),
                             repeats=repeats))
    for entry in rows.values():
        entry['seeds'] = dict(sorted(entry['seeds'].items(), key=lambda item: int(item[0])))
    budget: Dict[str, float] = {}
    for stage in stages:
        done = read_done(stage.work_dir)
        if done is not None and done.get('ran', True):
            budget[stage.kind] = budget.get(stage.kind, 0.0) + done['seconds']
    results = dict(protocol=protocol.path, generated=time.strftime('%Y-%m-%d %H:%M:%S'), rows=rows,
                   summary=summarise(rows), budget=budget)
    results['comparisons'] = compare(results, protocol.comparisons)
    if included:
        results['included'] = included
    return results


def _number(value: float, digits: int, sign: bool = False) -> str:
    """``value`` at ``digits`` decimals; one that rounds to zero prints without a minus sign."""
    return f'{round(value, digits) + 0.0:{"+" if sign else ""}.{digits}f}'


def _cell(stat: dict, digits: int = 3) -> str:
    if stat['n'] == 0:
        return '-'
    return _number(stat['mean'], digits) + (f' ± {_number(stat["std"], digits)}' if stat['n'] > 1 else '')


def _sig(stat: dict) -> str:
    """Three significant digits (spreads range over orders of magnitude), ``± std`` for several seeds."""
    if stat['n'] == 0:
        return '-'
    return f'{stat["mean"]:.3g}' + (f' ± {stat["std"]:.2g}' if stat['n'] > 1 else '')


def _table(header: List[str], lines: List[List[str]]) -> List[str]:
    return (['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
            + ['| ' + ' | '.join(line) + ' |' for line in lines])


def _machine(machine: Optional[dict]) -> str:
    if not machine:
        return 'machine not recorded'
    return f'{machine["cpu"]} ({machine["cpu_capability"]}, torch {machine["torch"]})'


def _included_lines(results: dict) -> List[str]:
    """The reports merged in, their own measured compute, and the drift of the runs repeated since."""
    lines = []
    for entry in results.get('included', ()):
        lines.append(f'Runs not on disk come from {entry["path"]} (generated {entry["generated"]}; its measured '
                     f'compute {sum(entry["budget"].values()) / 3600:.2f} h).')
        for run, repeat in entry.get('repeats', {}).items():
            diff, (now, earlier) = repeat['difference'], repeat['machines']
            largest = max(diff, key=lambda key: abs(diff[key]), default=None)
            where = ('same machine' if now == earlier else
                     f'{_machine(now)} now, {_machine(earlier)} then')
            lines.append(f'Repeated run {run} ({where}): ' + (
                'identical metrics.' if largest is None or diff[largest] == 0 else
                f'largest difference {largest} {diff[largest]:+.4g} (AMOTA {diff.get("track/amota", 0):+.4g}, '
                f'lanes IoU {diff.get("map/lanes_iou", 0):+.4g}).'))
    return lines


def _comparison_lines(entries: Sequence[dict], labels: Dict[str, str]) -> List[str]:
    """Markdown of the protocol's comparisons (``comparisons.compare``'s entries): one table each."""
    lines = []
    for entry in entries:
        row, reference = labels[entry['row']], labels[entry['reference']]
        if entry['paired']:
            lines += ['', f'**{entry["name"]}**: {row} − {reference}, seed by seed (seeds '
                      f'{", ".join(entry["seeds"])}; same starting checkpoint per seed)', '',
                      '| metric | per seed | mean ± std | positive / negative (at the precision shown) |',
                      '|---|---|---|---|']
            for metric, figures in entry['metrics'].items():
                digits = metric_digits(metric)
                per_seed = ' / '.join(_number(d, digits, sign=True) for d in figures['differences'])
                lines.append(f'| {metric} | {per_seed} | {_cell(figures["mean_std"], digits)} | '
                             f'{figures["positive"]} / {figures["negative"]} |')
        else:
            lines += ['', f'**{entry["name"]}**: {reference} − {row}, against {SEPARATION:g} × the larger seed std',
                      '', f'| metric | {reference} | {row} | gap | {SEPARATION:g} × std | gap > {SEPARATION:g} × std |',
                      '|---|---|---|---|---|---|']
            for metric, figures in entry['metrics'].items():
                digits = metric_digits(metric)
                noise = '-' if figures['noise'] is None else _number(figures['noise'], digits)
                verdict = {None: 'undecided (< 2 seeds)', True: 'yes', False: 'no'}[figures['separated']]
                lines.append(f'| {metric} | {_cell(figures["reference"], digits)} | {_cell(figures["row"], digits)} | '
                             f'{_number(figures["gap"], digits, sign=True)} | {noise} | {verdict} |')
    return lines


def markdown(results: dict, protocol: Protocol) -> str:
    """The tables of the result page: overall, per city, MMD, spread, the protocol's comparisons; mean ± std over
    seeds (n = seeds)."""
    order = [row.name for row in protocol.rows if row.name in results['summary']]
    label = {name: results['rows'][name]['label'] for name in order}
    stats = results['summary']

    def n(name: str) -> str:
        return str(len(results['rows'][name]['seeds']))

    overall_keys = [f'track/{k}' for k in TRACK_KEYS] + [f'map/{k}' for k in MAP_KEYS]
    overall = _table(['row', 'seeds', 'AMOTA', 'AMOTP (m)', 'recall', 'IDS', 'lanes IoU', 'drivable IoU',
                      'divider IoU', 'crossing IoU'],
                     [[label[r], n(r)] + [_cell(stats[r][key], metric_digits(key)) for key in overall_keys]
                      for r in order])
    city_columns = ('AMOTA', 'recall', 'lanes IoU', 'drivable IoU')
    per_city = _table(['row'] + [f'{what} {city.capitalize()}' for what in city_columns for city in CITIES],
                      [[label[r]] + [_cell(stats[r][key], metric_digits(key))
                                     for key in [f'track/{c}/{k}' for k in ('amota', 'recall') for c in CITIES]
                                     + [f'map/{c}/{k}' for k in ('lanes_iou', 'drivable_iou') for c in CITIES]]
                       for r in order])
    mmd = _table(['row'] + [f'MMD² B~S {f}' for f in MMD_FEATURES],
                 [[label[r]] + [_cell(stats[r][f'mmd/{f}'], 4) for f in MMD_FEATURES] for r in order])
    spread_rows = [r for r in order if any(stats[r][f'spread/{f}/{w}']['n'] for f in SPREAD_FEATURES
                                           for w in ('start', 'end'))]
    spread = _table(['row'] + [f'std {f}' for f in SPREAD_FEATURES],
                    [[label[r]] + [f"{_sig(stats[r][f'spread/{f}/start'])} → {_sig(stats[r][f'spread/{f}/end'])}"
                                   for f in SPREAD_FEATURES] for r in spread_rows])
    budget = ', '.join(f'{kind} {seconds / 3600:.2f} h' for kind, seconds in results['budget'].items())
    total = sum(results['budget'].values()) / 3600
    return '\n'.join(['### Overall (held-out val scenes)', ''] + overall
                     + ['', '### Per city', ''] + per_city
                     + ['', '### Boston–Singapore MMD² of the task features and latents', ''] + mmd
                     + (['', '### Spread of NexusFlow\'s embeddings and latents (mean per-dimension std over the val '
                         'scenes at fixed parameters, start of the run → end)', ''] + spread if spread_rows else [])
                     + (['', '### Comparisons'] + _comparison_lines(results['comparisons'], label)
                        if results.get('comparisons') else [])
                     + ([''] + [f'Measured compute: {budget} (total {total:.2f} h on this machine).'] * bool(budget)
                        + _included_lines(results))
                     + [''])


def plot(results: dict, protocol: Protocol, out_dir: str) -> List[str]:
    """``per_city.png`` (AMOTA and lanes IoU per city per row, error bars = std over seeds) and ``mmd.png`` (once
    some run has its feature analysis)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    order = [row.name for row in protocol.rows if row.name in results['summary']]
    stats = results['summary']
    paths = []
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.45 * len(order) + 2.2))
    panels = (('track/{}/amota', 'AMOTA', 1.0), ('map/{}/lanes_iou', 'lanes IoU', 1.0))
    for ax, (key, title, scale) in zip(axes, panels):
        for offset, (city, color) in enumerate(zip(CITIES, ('tab:blue', 'tab:orange'))):
            ys = [i + (offset - 0.5) * 0.38 for i in range(len(order))]
            means = [stats[r][key.format(city)]['mean'] * scale for r in order]
            errs = [stats[r][key.format(city)]['std'] * scale if stats[r][key.format(city)]['n'] > 1 else 0
                    for r in order]
            ax.barh(ys, means, height=0.36, xerr=errs, color=color, label=city.capitalize(), capsize=3)
        ax.set_yticks(range(len(order)), [results['rows'][r]['label'] for r in order], fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f'{title} per city (held-out val)')
        ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(osp.join(out_dir, 'per_city.png'))
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    features = [f for f in MMD_FEATURES if any(stats[r][f'mmd/{f}']['n'] for r in order)]
    if not features:
        return paths
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(order) + 2.2))
    width = 0.8 / max(1, len(features))
    for k, feature in enumerate(features):
        ys = [i - 0.4 + (k + 0.5) * width for i in range(len(order))]
        ax.barh(ys, [stats[r][f'mmd/{feature}']['mean'] for r in order], height=width * 0.95,
                xerr=[stats[r][f'mmd/{feature}']['std'] if stats[r][f'mmd/{feature}']['n'] > 1 else 0
                      for r in order], label=feature, capsize=2)
    ax.set_yticks(range(len(order)), [results['rows'][r]['label'] for r in order], fontsize=8)
    ax.invert_yaxis()
    ax.set_title('Boston–Singapore MMD² (held-out val)')
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(osp.join(out_dir, 'mmd.png'))
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths

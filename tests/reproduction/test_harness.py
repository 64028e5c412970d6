"""The reproduction harness on a fake runner: stage order, resume, shared stages, aggregation, report (no training)."""
import glob
import json
import os
import os.path as osp

import pytest
from mmengine.config import Config

from projects.nexusflow.reproduction import Executor, StagePlanner, collect, expand_runs, load_protocol, markdown, \
    mean_std, plot
from projects.nexusflow.reproduction.stages import data_options, data_ready

CONFIG = 'configs/uniad_nexusflow/tiny_uniad_full.py'


def write_protocol(tmp_path, rows=None, then=None, extra='', per_seed=None):
    rows = rows or [
        dict(name='full', label='Full', config=CONFIG, seeds=2),
        dict(name='baseline', label='Baseline', config=CONFIG, seeds=[0, 1]),
        dict(name='twophase', label='Two-phase', config=CONFIG, seeds=1, init='baseline'),
        dict(name='scratch', label='Scratch', config=CONFIG, seeds=1, init=None),
    ]
    data = dict(root=str(tmp_path / 'data'), scenes_per_city=2, samples_per_scene=4, seed=0, img_size=(64, 36))
    pre = dict(data=dict(data, root=str(tmp_path / 'pre'), seed=1), config=CONFIG)
    if then is not None:
        pre['then'] = then
    if per_seed is not None:
        pre['per_seed'] = per_seed
    path = tmp_path / 'protocol.py'
    path.write_text(f'data = {data!r}\npretrain = {pre!r}\nrow_options = {{"model.x": 1}}\nrows = {rows!r}\n'
                    + extra)
    return str(path)


class FakeRunner:
    """Plays the tools: writes what each would write; can fail a chosen stage once (an interruption)."""

    def __init__(self, metrics_of, fail_on=None):
        self.calls, self.metrics_of, self.fail_on = [], metrics_of, fail_on

    def __call__(self, command, log_path, on_line):
        tool = command[1]
        self.calls.append(command)
        if tool == 'tools/create_data.py':
            root = command[command.index('--out-dir') + 1]
            os.makedirs(root, exist_ok=True)
            open(osp.join(root, 'nuscenes_infos_temporal_val.pkl'), 'w').close()
            return 0
        work_dir = command[command.index('--work-dir') + 1]
        os.makedirs(work_dir, exist_ok=True)
        if tool == 'tools/train.py':
            on_line('Epoch(train) [1][ 5/10]  lr: 1e-3  eta: 0:01:40  time: 1.0')
            if self.fail_on is not None and self.fail_on in work_dir:
                self.fail_on = None
                ckpt = osp.join(work_dir, 'epoch_1.pth')
                open(ckpt, 'w').close()
                open(osp.join(work_dir, 'last_checkpoint'), 'w').write(ckpt)
                return 1
            ckpt = osp.join(work_dir, 'epoch_2.pth')
            open(ckpt, 'w').close()
            open(osp.join(work_dir, 'last_checkpoint'), 'w').write(ckpt)
            return 0
        if tool == 'tools/test.py':
            log_dir = osp.join(work_dir, '20260101_000000')
            os.makedirs(log_dir, exist_ok=True)
            run = work_dir.split(os.sep)[-3:-1]  # <row>, seed<k>
            with open(osp.join(log_dir, '20260101_000000.json'), 'w') as f:
                f.write(json.dumps(self.metrics_of(*run)) + '\n')
            return 0
        if tool == 'tools/analyze_features.py':
            out = command[command.index('--out-dir') + 1]
            os.makedirs(out, exist_ok=True)
            latent_std = 0.2 if out.endswith('analysis_start') else 0.01
            with open(osp.join(out, 'analysis.json'), 'w') as f:
                json.dump(dict(features={'taps/map': dict(mmd_city={'boston~singapore': dict(mean=0.5, std=0.1)}),
                                         'latents/map': dict(mmd_city={}, mean_std=latent_std)}), f)
            return 0
        raise AssertionError(f'unexpected command {command}')


def metrics(row, seed):
    value = {'full': 0.5, 'baseline': 0.2, 'twophase': 0.3, 'scratch': 0.1}[row] + 0.1 * int(seed[4:])
    return {'track/amota': value, 'track/boston/amota': value / 2, 'map/lanes_iou': 100 * value, 'step': 1}


def test_protocol_expansion_orders_dependencies_first(tmp_path):
    protocol = load_protocol(write_protocol(tmp_path))
    runs = expand_runs(protocol, ['twophase'], [0, 3])
    assert [r.key for r in runs] == ['baseline/seed0', 'twophase/seed0', 'baseline/seed3', 'twophase/seed3']
    assert [r.key for r in expand_runs(protocol)] == ['full/seed0', 'baseline/seed0', 'twophase/seed0',
                                                      'scratch/seed0', 'full/seed1', 'baseline/seed1']


def test_pretraining_chain_starts_each_stage_from_the_previous_one(tmp_path):
    protocol = load_protocol(write_protocol(tmp_path, then=[dict(name='clips', config=CONFIG)]))
    out = str(tmp_path / 'out')
    runs = expand_runs(protocol, ['full'], [0])
    planner = StagePlanner(protocol, out, python='python')
    runner = FakeRunner(metrics)
    Executor(out, runner=runner, echo=lambda line: None, estimates={}).run(planner.plan(runs))
    trains = [c for c in runner.calls if c[1] == 'tools/train.py']
    work_dirs = [c[c.index('--work-dir') + 1] for c in trains]
    assert work_dirs == [osp.join(out, 'pretrain'), osp.join(out, 'pretrain_clips'),
                         osp.join(out, 'runs', 'full', 'seed0', 'train')]
    assert not any(a.startswith('load_from=') for a in trains[0])
    assert f'load_from={osp.join(out, "pretrain", "epoch_2.pth")}' in trains[1]
    assert f'load_from={osp.join(out, "pretrain_clips", "epoch_2.pth")}' in trains[2]
    with pytest.raises(ValueError, match=r'pretrain.then\[0\] must be'):
        load_protocol(write_protocol(tmp_path, then=[dict(name='a b', config=CONFIG)]))
    with pytest.raises(FileNotFoundError, match='missing.py does not exist'):
        load_protocol(write_protocol(tmp_path, then=[dict(name='clips', config='missing.py')]))


def test_per_seed_pretraining_trains_one_chain_per_seed_before_its_runs(tmp_path):
    """``pretrain.per_seed``: the chain of seed k is trained with seed k, before seed k's first run, and starts the
    runs of seed k only (a phase-2 row through its phase-1 row)."""
    rows = [dict(name='baseline', label='Baseline', config=CONFIG, seeds=[0, 1]),
            dict(name='twophase', label='Two-phase', config=CONFIG, seeds=[0, 1], init='baseline')]
    protocol = load_protocol(write_protocol(tmp_path, rows, then=[dict(name='clips', config=CONFIG)], per_seed=True))
    assert protocol.pretrain_per_seed
    out = str(tmp_path / 'out')
    runner = FakeRunner(metrics)
    executor = Executor(out, runner=runner, echo=lambda line: None, estimates={})
    executor.run(StagePlanner(protocol, out, python='python').plan(expand_runs(protocol)))
    trains = [c for c in runner.calls if c[1] == 'tools/train.py']
    work_dirs = [osp.relpath(c[c.index('--work-dir') + 1], out) for c in trains]
    assert work_dirs == [osp.join('pretrain', 'seed0'), osp.join('pretrain_clips', 'seed0'),
                         osp.join('runs', 'baseline', 'seed0', 'train'), osp.join('runs', 'twophase', 'seed0', 'train'),
                         osp.join('pretrain', 'seed1'), osp.join('pretrain_clips', 'seed1'),
                         osp.join('runs', 'baseline', 'seed1', 'train'), osp.join('runs', 'twophase', 'seed1', 'train')]
    for seed, first in ((0, 0), (1, 4)):
        chain, clips, phase1 = trains[first:first + 3]
        assert f'randomness.seed={seed}' in chain and f'randomness.seed={seed}' in clips
        assert not any(a.startswith('load_from=') for a in chain)
        assert f'load_from={osp.join(out, "pretrain", f"seed{seed}", "epoch_2.pth")}' in clips
        assert f'load_from={osp.join(out, "pretrain_clips", f"seed{seed}", "epoch_2.pth")}' in phase1
    assert sum(c[1] == 'tools/create_data.py' for c in runner.calls) == 2, 'the pretraining set is made once'
    calls = len(runner.calls)
    executor.run(StagePlanner(protocol, out, python='python').plan(expand_runs(protocol)))
    assert len(runner.calls) == calls, 'a finished reproduction runs nothing'
    with pytest.raises(ValueError, match='pretrain.per_seed must be True or False'):
        load_protocol(write_protocol(tmp_path, rows, per_seed='yes'))


def test_test_and_analysis_build_the_model_the_run_trained(tmp_path):
    """Model options of the protocol and the row (e.g. an inference-time ``track_radius``) reach tools/test.py and
    tools/analyze_features.py; training-only options do not."""
    rows = [dict(name='full', label='Full', config=CONFIG, seeds=1, options={'model.y': 2, 'train_cfg.max_epochs': 3})]
    protocol = load_protocol(write_protocol(tmp_path, rows))
    out = str(tmp_path / 'out')
    runner = FakeRunner(metrics)
    Executor(out, runner=runner, echo=lambda line: None, estimates={}).run(
        StagePlanner(protocol, out, python='python').plan(expand_runs(protocol)))
    (train, ) = [c for c in runner.calls if c[1] == 'tools/train.py' and 'runs' in c[c.index('--work-dir') + 1]]
    assert {'model.x=1', 'model.y=2', 'train_cfg.max_epochs=3', 'randomness.seed=0'} <= set(train)
    for tool in ('tools/test.py', 'tools/analyze_features.py'):
        (command, ) = [c for c in runner.calls if c[1] == tool]
        assert {'model.x=1', 'model.y=2'} <= set(command), command
        assert not any(a.startswith(('train_cfg.', 'randomness.', 'load_from=')) for a in command), command


def test_config_options_reach_the_rows_whose_config_matches(tmp_path):
    """Order: row_options, then the matching config_options, then the row's own options."""
    sgeo = 'configs/uniad_nexusflow/tiny_uniad_sgeo.py'
    rows = [dict(name='full', label='Full', config=CONFIG, seeds=1, options={'model.z': 3}),
            dict(name='baseline', label='Baseline', config=sgeo, seeds=1)]
    extra = 'config_options = {"*_full.py": {"model.x": 5, "model.z": 2}}\n'
    protocol = load_protocol(write_protocol(tmp_path, rows, extra=extra))
    assert protocol.options(protocol.row('full')) == {'model.x': 5, 'model.z': 3}
    assert protocol.options(protocol.row('baseline')) == {'model.x': 1}
    out = str(tmp_path / 'out')
    runner = FakeRunner(metrics)
    Executor(out, runner=runner, echo=lambda line: None, estimates={}).run(
        StagePlanner(protocol, out, python='python').plan(expand_runs(protocol)))
    trains = {c[2]: c for c in runner.calls if c[1] == 'tools/train.py' and 'runs' in c[c.index('--work-dir') + 1]}
    assert {'model.x=5', 'model.z=3'} <= set(trains[CONFIG]) and 'model.x=1' not in trains[CONFIG]
    assert 'model.x=1' in trains[sgeo] and not any(a.startswith('model.z') for a in trains[sgeo])
    with pytest.raises(ValueError, match=r"pattern '\*nexusflow\*' matches no row"):
        load_protocol(write_protocol(tmp_path, rows, extra='config_options = {"*nexusflow*": {"model.x": 5}}\n'))


def test_protocol_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="starts from row 'nope'"):
        load_protocol(write_protocol(tmp_path, [dict(name='a', label='A', config=CONFIG, seeds=1, init='nope')]))
    with pytest.raises(FileNotFoundError, match='missing.py does not exist'):
        load_protocol(write_protocol(tmp_path, [dict(name='a', label='A', config='missing.py', seeds=1)]))
    with pytest.raises(KeyError, match="no row 'zzz'"):
        expand_runs(load_protocol(write_protocol(tmp_path)), ['zzz'])
    bad = {"reference 'oracle' is not a row": dict(name='g', row='baseline', reference='oracle', metrics=['map/iou']),
           "unknown: \\['map/iou'\\]": dict(name='g', row='baseline', reference='full', metrics=['map/iou']),
           'paired must be True or False': dict(name='g', row='baseline', reference='full',
                                                metrics=['track/amota'], paired='yes'),
           r'must be dict\(name, row, reference, metrics': dict(name='g', row='baseline', reference='full')}
    for message, comparison in bad.items():
        with pytest.raises(ValueError, match=message):
            load_protocol(write_protocol(tmp_path, extra=f'comparisons = [{comparison!r}]\n'))


def test_run_resume_and_report(tmp_path):
    protocol = load_protocol(write_protocol(tmp_path))
    out = str(tmp_path / 'out')
    runs = expand_runs(protocol)
    planner = StagePlanner(protocol, out, python='python')
    lines = []
    runner = FakeRunner(metrics, fail_on=osp.join('twophase', 'seed0', 'train'))
    executor = Executor(out, runner=runner, echo=lines.append, estimates=dict(data=1, train=1, test=1, analysis=1))
    with pytest.raises(RuntimeError, match=r'twophase/seed0/train failed .*twophase_seed0_train.log'):
        executor.run(planner.plan(runs))
    first = [c for c in runner.calls]
    assert sum(c[1] == 'tools/create_data.py' for c in first) == 2
    assert any('epoch 1 iter 5/10' in line and '0:01:40 left' in line for line in lines), 'progress is echoed'
    # the interrupted run resumes from its checkpoint; nothing finished is redone
    executor.run(planner.plan(runs))
    second = runner.calls[len(first):]
    # seed-major order: the interrupted twophase/seed0 (also analysed as it starts, from baseline/seed0's
    # checkpoint), then scratch/seed0, full/seed1, baseline/seed1
    tools = ['tools/train.py', 'tools/test.py', 'tools/analyze_features.py']
    assert [c[1] for c in second] == tools + ['tools/analyze_features.py'] + tools * 3
    start = second[3]
    assert start[3] == osp.join(out, 'runs', 'baseline', 'seed0', 'train', 'epoch_2.pth')
    assert start[start.index('--out-dir') + 1] == osp.join(out, 'runs', 'twophase', 'seed0', 'analysis_start')
    assert [c[c.index('--work-dir') + 1].split(os.sep)[-3] for c in second[::3][:1] + second[4::3]] == [
        'twophase', 'scratch', 'full', 'baseline']
    assert '--resume' in second[0] and not any(arg.startswith('load_from=') for arg in second[0])
    assert '--resume' not in second[4]
    executor.run(planner.plan(runs))
    assert len(runner.calls) == len(first) + len(second), 'a finished reproduction runs nothing'

    by_dir = {c[c.index('--work-dir') + 1]: c for c in runner.calls if c[1] == 'tools/train.py'}
    pretrain_ckpt = osp.join(out, 'pretrain', 'epoch_2.pth')
    phase1_ckpt = osp.join(out, 'runs', 'baseline', 'seed0', 'train', 'epoch_2.pth')
    full = by_dir[osp.join(out, 'runs', 'full', 'seed1', 'train')]
    assert f'load_from={pretrain_ckpt}' in full and 'randomness.seed=1' in full and 'model.x=1' in full
    twophase_first = [c for c in first if c[1] == 'tools/train.py' and 'twophase' in c[c.index('--work-dir') + 1]]
    assert len(twophase_first) == 1 and f'load_from={phase1_ckpt}' in twophase_first[0]
    assert not any(a.startswith('load_from=') for a in by_dir[osp.join(out, 'runs', 'scratch', 'seed0', 'train')])
    assert sum(c[1] == 'tools/train.py' and 'pretrain' in c[c.index('--work-dir') + 1] for c in runner.calls) == 1

    results = collect(protocol, runs, planner, planner.plan(runs))
    assert results['summary']['full']['track/amota'] == pytest.approx(dict(mean=0.55, std=0.1 / 2 ** 0.5, n=2))
    assert results['summary']['twophase']['map/lanes_iou']['mean'] == pytest.approx(30.0)
    assert results['rows']['baseline']['seeds']['1']['mmd'] == {'taps/map': 0.5}
    assert results['rows']['twophase']['seeds']['0']['spread'] == {'latents/map': dict(start=0.2, end=0.01)}
    assert results['rows']['full']['seeds']['0']['spread'] == {'latents/map': dict(end=0.01)}
    assert set(results['budget']) == {'data', 'train', 'test', 'analysis'}
    page = markdown(results, protocol)
    assert '| Full | 2 | 0.550 ± 0.071 |' in page and '| Scratch | 1 | 0.100 |' in page
    assert '| Two-phase | - → - | - → - | - → - | 0.2 → 0.01 |' in page
    paths = plot(results, protocol, out)
    assert all(osp.getsize(p) > 1000 for p in paths)


def test_comparisons_weigh_gaps_against_the_seed_noise_and_pair_seeds(tmp_path):
    comparisons = [dict(name='Gap', reference='full', row='baseline', metrics=['track/amota', 'map/lanes_iou']),
                   dict(name='Small gap', reference='full', row='twophase', metrics=['track/amota']),
                   dict(name='One seed', reference='full', row='scratch', metrics=['track/amota']),
                   dict(name='Paired', reference='baseline', row='twophase', metrics=['track/boston/amota'],
                        paired=True)]
    protocol = load_protocol(write_protocol(tmp_path, extra=f'comparisons = {comparisons!r}\n'))

    def spread_metrics(row, seed):  # full varies less over its seeds than the others
        value = metrics(row, seed)['track/amota'] - (0.08 * int(seed[4:]) if row == 'full' else 0)
        return {'track/amota': value, 'track/boston/amota': value / 2, 'map/lanes_iou': 100 * value}

    out = str(tmp_path / 'out')
    runs = expand_runs(protocol, ['full', 'baseline', 'twophase'], [0, 1]) + expand_runs(protocol, ['scratch'], [0])
    planner = StagePlanner(protocol, out, python='python')
    executor = Executor(out, runner=FakeRunner(spread_metrics), echo=lambda line: None,
                        estimates=dict(data=1, train=1, test=1, analysis=1))
    executor.run(planner.plan(runs))
    results = collect(protocol, runs, planner, planner.plan(runs))
    gap, small, one, paired = results['comparisons']
    std = 3 * 0.1 / 2 ** 0.5  # 3 x the larger seed std: the baseline's two seeds are 0.1 apart, full's 0.02
    assert gap['metrics']['track/amota']['gap'] == pytest.approx(0.26)  # full 0.5 / 0.52, baseline 0.2 / 0.3
    assert gap['metrics']['track/amota']['noise'] == pytest.approx(std)
    assert gap['metrics']['track/amota']['separated'] and gap['metrics']['map/lanes_iou']['separated']
    assert small['metrics']['track/amota']['gap'] == pytest.approx(0.16) and not small['metrics']['track/amota'][
        'separated'], "0.16 < 3 x the two-phase row's std (not full's)"
    assert one['metrics']['track/amota']['separated'] is None, 'one seed of scratch: undecided'
    assert paired['seeds'] == ['0', '1']
    figures = paired['metrics']['track/boston/amota']
    assert figures['differences'] == pytest.approx([0.05, 0.05]) and (figures['positive'], figures['negative']) == (
        2, 0)
    page = markdown(results, protocol)
    assert '| track/amota | 0.510 ± 0.014 | 0.250 ± 0.071 | +0.260 | 0.212 | yes |' in page
    assert '| map/lanes_iou | 51.0 ± 1.4 | 25.0 ± 7.1 | +26.0 | 21.2 | yes |' in page
    assert '| track/amota | 0.510 ± 0.014 | 0.350 ± 0.071 | +0.160 | 0.212 | no |' in page
    assert '| track/amota | 0.510 ± 0.014 | 0.100 | +0.410 | - | undecided (< 2 seeds) |' in page
    assert '| track/boston/amota | +0.050 / +0.050 | 0.050 ± 0.000 | 2 / 0 |' in page

    only_full = collect(protocol, runs[:1], planner, planner.plan(runs[:1]))
    assert only_full['comparisons'] == [], 'a comparison needs both rows'


def test_included_reports_fill_the_runs_not_on_disk(tmp_path):
    protocol = load_protocol(write_protocol(tmp_path))
    estimates = dict(data=1, train=1, test=1, analysis=1)

    def run(out, rows, seeds):
        runs = expand_runs(protocol, rows, seeds)
        planner = StagePlanner(protocol, out, python='python')
        Executor(out, runner=FakeRunner(metrics), echo=lambda line: None, estimates=estimates).run(planner.plan(runs))
        return runs, planner

    earlier_runs, earlier_planner = run(str(tmp_path / 'earlier'), ['full', 'baseline'], [0, 1])
    earlier = collect(protocol, earlier_runs, earlier_planner, earlier_planner.plan(earlier_runs))
    earlier['rows']['full']['seeds']['2'] = dict(earlier['rows']['full']['seeds']['0'],
                                                 metrics={'track/amota': 9.0})
    earlier['rows']['baseline']['seeds']['1']['machine'] = None  # a report made before machines were recorded
    earlier_path = tmp_path / 'earlier.json'
    earlier_path.write_text(json.dumps(earlier))
    same = collect(protocol, earlier_runs, earlier_planner, earlier_planner.plan(earlier_runs),
                   include=[str(earlier_path)])
    page = markdown(same, protocol)
    assert 'Repeated run full/seed0 (same machine): identical metrics.' in page
    assert 'now, machine not recorded then): identical metrics.' in page

    runs, planner = run(str(tmp_path / 'now'), ['full'], [2])
    results = collect(protocol, runs, planner, planner.plan(runs), include=[str(earlier_path)])
    assert list(results['rows']) == ['full'], 'only the selected rows are merged in'
    assert list(results['rows']['full']['seeds']) == ['0', '1', '2']
    assert results['rows']['full']['seeds']['2']['metrics']['track/amota'] == pytest.approx(0.7), 'disk wins'
    assert results['summary']['full']['track/amota'] == pytest.approx(dict(mean=0.6, std=0.1, n=3))
    assert results['included'][0]['budget'] == earlier['budget']
    repeat = results['included'][0]['repeats']['full/seed2']
    assert repeat['difference'] == pytest.approx({'track/amota': 0.7 - 9.0})
    assert repeat['machines'][0]['cores'] == os.cpu_count() and repeat['machines'][1] == repeat['machines'][0]
    page = markdown(results, protocol)
    assert 'earlier.json' in page
    assert 'Repeated run full/seed2 (same machine): largest difference track/amota -8.3' in page

    earlier['protocol'] = 'configs/other.py'
    earlier_path.write_text(json.dumps(earlier))
    with pytest.raises(ValueError, match=r'--include .*earlier.json.*configs/other.py'):
        collect(protocol, runs, planner, planner.plan(runs), include=[str(earlier_path)])
    with pytest.raises(FileNotFoundError, match='--include .*missing.json'):
        collect(protocol, runs, planner, planner.plan(runs), include=[str(tmp_path / 'missing.json')])


def test_mean_std_ignores_missing_values():
    assert mean_std([1.0, float('nan'), 3.0]) == dict(mean=2.0, std=2 ** 0.5, n=2)
    assert mean_std([])['n'] == 0


def test_data_stage_reuses_its_own_set_and_refuses_others(tmp_path):
    protocol = load_protocol(write_protocol(tmp_path))
    spec = protocol.data
    assert not data_ready(spec)
    os.makedirs(spec.root)
    open(osp.join(spec.root, 'x'), 'w').close()
    with pytest.raises(FileExistsError, match='not written by tools/reproduce.py'):
        data_ready(spec)
    with open(osp.join(spec.root, 'reproduce_data.json'), 'w') as f:
        json.dump(dict(spec.as_dict(), seed=7), f)
    with pytest.raises(FileExistsError, match='holds a synthetic set made with'):
        data_ready(spec)
    with open(osp.join(spec.root, 'reproduce_data.json'), 'w') as f:
        json.dump(spec.as_dict(), f)
    assert data_ready(spec)


def test_a_vehicle_mix_reaches_create_data_and_tells_sets_apart(tmp_path):
    path = write_protocol(tmp_path)
    text = open(path).read().replace("'img_size': (64, 36)}", "'img_size': (64, 36), 'vehicle_mix': {'bus': 1}}", 1)
    open(path, 'w').write(text)
    protocol = load_protocol(path)
    assert protocol.data.vehicle_mix == (('bus', 1.0), ) and protocol.pretrain_data.vehicle_mix is None
    planner = StagePlanner(protocol, str(tmp_path / 'out'), python='python')
    command = planner.data_stage(protocol.data, 'protocol').command()
    assert command[-2:] == ['--vehicle-mix', 'bus=1.0']
    assert '--vehicle-mix' not in planner.data_stage(protocol.pretrain_data, 'pretrain').command()
    spec = protocol.data
    os.makedirs(spec.root)
    with open(osp.join(spec.root, 'reproduce_data.json'), 'w') as f:
        json.dump({k: v for k, v in spec.as_dict().items() if k != 'vehicle_mix'}, f)  # the same set, default mix
    with pytest.raises(FileExistsError, match='holds a synthetic set made with'):
        data_ready(spec)
    open(path, 'w').write(text.replace("{'bus': 1}", "{'plane': 1}"))
    with pytest.raises(ValueError, match=r"data.vehicle_mix: vehicle_mix names \['plane'\]"):
        load_protocol(path)


def test_data_options_move_every_loader_and_no_metric_needs_one(tmp_path):
    root = str(tmp_path / 'set')
    assert data_options(root, CONFIG) == {'train_dataloader.dataset.dataset.data_root': root + '/',
                                          'val_dataloader.dataset.data_root': root + '/',
                                          'test_dataloader.dataset.data_root': root + '/'}


REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PROTOCOLS = sorted(glob.glob(osp.join(REPO, 'configs', 'uniad_nexusflow', 'reproduce', 'synth_*.py')))


@pytest.mark.parametrize('path', PROTOCOLS, ids=osp.basename)
def test_shipped_protocols_load(path, monkeypatch):
    monkeypatch.chdir(REPO)
    protocol = load_protocol(path)
    assert protocol.rows and all(osp.isfile(row.config) for row in protocol.rows)
    if 'noleak' in protocol.name:
        # the leak-free chain keeps box labels only where the S-Geo rows have track labels
        for stage in protocol.pretrain_stages:
            assert Config.fromfile(stage.config).train_dataloader.dataset.split == 'standard', stage.config
        assert {row.group for row in protocol.rows} == {'S-Geo'}


@pytest.mark.parametrize('path', PROTOCOLS, ids=osp.basename)
def test_shipped_protocol_rows_agree_on_the_bev_grid(path, monkeypatch):
    """Every row's config with the protocol's options: one BEV grid for the encoder, the heads and any BEV tap."""
    monkeypatch.chdir(REPO)
    protocol = load_protocol(path)
    for row in protocol.rows:
        cfg = Config.fromfile(row.config)
        cfg.merge_from_dict(protocol.options(row))
        model = cfg.model
        grid = (model.bev_encoder.bev_h, model.bev_encoder.bev_w)
        for head in ('track_head', 'map_head'):
            assert (model[head].bev_h, model[head].bev_w) == grid, f'{row.name}: {head}'
        for plugin in model.get('plugins', []):
            for task, spec in plugin.get('tasks', {}).items():
                if 'bev_shape' in spec.get('tap', {}):
                    assert tuple(spec.tap.bev_shape) == grid, f'{row.name}: {task} tap'

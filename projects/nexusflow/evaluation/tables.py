"""Readable tables of the metrics' figures, logged at the end of each evaluation (as mmdet's metrics log theirs).

The metrics return flat dicts whose keys carry their scope before the last ``/`` (``amota`` overall,
``boston/amota`` per city, ``uniad/boston/lanes_iou`` per map GT protocol and city); these helpers lay such a dict
out as terminaltables ``AsciiTable``s (the table package mmdet's metrics use): one row per scope for the summary
figures, one row per class for the per-class figures. Only the layout is written here; the figures are the metrics'.
"""
from typing import Dict, List, Mapping, Sequence, Tuple

from mmengine.logging import print_log
from terminaltables import AsciiTable

__all__ = ['scope_table', 'class_table', 'log_tables', 'TRACKING_COLUMNS', 'DETECTION_COLUMNS', 'MAP_COLUMNS']

# (metric name, column header, format) of the summary tables
TRACKING_COLUMNS = (('amota', 'AMOTA', '.3f'), ('amotp', 'AMOTP', '.3f'), ('recall', 'Recall', '.3f'),
                    ('mota', 'MOTA', '.3f'), ('motp', 'MOTP', '.3f'), ('mt', 'MT', '.0f'), ('ml', 'ML', '.0f'),
                    ('tp', 'TP', '.0f'), ('fp', 'FP', '.0f'), ('fn', 'FN', '.0f'), ('ids', 'IDS', '.0f'),
                    ('frag', 'FRAG', '.0f'))
DETECTION_COLUMNS = (('nds', 'NDS', '.4f'), ('map', 'mAP', '.4f'), ('mate', 'mATE', '.4f'), ('mase', 'mASE', '.4f'),
                     ('maoe', 'mAOE', '.4f'), ('mave', 'mAVE', '.4f'), ('maae', 'mAAE', '.4f'))
MAP_COLUMNS = (('lanes_iou', 'lanes', '.2f'), ('divider_iou', 'divider', '.2f'),
               ('crossing_iou', 'crossing', '.2f'), ('boundary_iou', 'boundary', '.2f'),
               ('drivable_iou', 'drivable', '.2f'))
OVERALL = 'overall'


def _by_scope(metrics: Mapping[str, float]) -> Dict[str, Dict[str, float]]:
    """``{scope: {name: value}}`` from ``{'<scope>/<name>': value}``; the unscoped keys under ``''``."""
    scoped: Dict[str, Dict[str, float]] = {}
    for key, value in metrics.items():
        scope, _, name = key.rpartition('/')
        scoped.setdefault(scope, {})[name] = value
    return scoped


def _scopes(scoped: Mapping[str, Mapping[str, float]]) -> List[str]:
    """Scopes in table order: the unscoped figures first, then the others sorted."""
    return sorted(scoped, key=lambda scope: (scope != '', scope))


def _cell(value, fmt: str) -> str:
    return '-' if value is None else format(value, fmt)


def _render(title: str, rows: List[List[str]]) -> str:
    table = AsciiTable(rows, title=title)
    table.inner_footing_row_border = False
    for col in range(1, len(rows[0])):
        table.justify_columns[col] = 'right'
    return table.table


def scope_table(title: str, metrics: Mapping[str, float], columns: Sequence[Tuple[str, str, str]]) -> str:
    """One row per scope (``overall``, ``boston``, ...) and one column per ``(name, header, format)`` of ``columns``.

    Args:
        title: table title.
        metrics: a metric's flat result dict (keys ``<name>`` and ``<scope>/<name>``).
        columns: the figures to show; a scope without any of them gets no row, a missing figure is ``-``.

    Returns:
        the table as text ('' when no scope has any of the figures).
    """
    scoped = _by_scope(metrics)
    rows = [['scope'] + [header for _, header, _ in columns]]
    for scope in _scopes(scoped):
        figures = scoped[scope]
        if any(name in figures for name, _, _ in columns):
            rows.append([scope or OVERALL] + [_cell(figures.get(name), fmt) for name, _, fmt in columns])
    return _render(title, rows) if len(rows) > 1 else ''


def class_table(title: str, metrics: Mapping[str, float], suffix: str, fmt: str = '.3f') -> str:
    """One row per class (keys ``[<scope>/]<class><suffix>``, e.g. ``car_amota``), one column per scope.

    Returns:
        the table as text ('' when no key ends with ``suffix``).
    """
    scoped = _by_scope(metrics)
    scopes = [scope for scope in _scopes(scoped) if any(name.endswith(suffix) for name in scoped[scope])]
    classes = sorted({name[:-len(suffix)] for scope in scopes for name in scoped[scope] if name.endswith(suffix)})
    if not classes:
        return ''
    rows = [['class'] + [scope or OVERALL for scope in scopes]]
    rows += [[cls] + [_cell(scoped[scope].get(cls + suffix), fmt) for scope in scopes] for cls in classes]
    return _render(title, rows)


def log_tables(*tables: str) -> None:
    """Log the non-empty tables through mmengine's current logger (the runner's log file and console)."""
    text = '\n'.join(table for table in tables if table)
    if text:
        print_log('\n' + text, logger='current')

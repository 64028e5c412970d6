"""The reproduction harness behind ``tools/reproduce.py``: protocols, resumable stages, results and the page.

A leaf of the package: nothing in ``models``, ``datasets`` or ``evaluation`` imports it, and it drives the project's
tools only through their command lines (the same code path as a user's ``tools/train.py`` / ``tools/test.py``).
"""
from .comparisons import compare, mean_std
from .executor import Executor, run_subprocess
from .protocol import Comparison, DataSpec, Protocol, Row, Run, expand_runs, load_protocol
from .results import collect, markdown, plot
from .stages import Stage, StagePlanner, data_options

__all__ = ['Comparison', 'DataSpec', 'Executor', 'Protocol', 'Row', 'Run', 'Stage', 'StagePlanner', 'collect',
           'compare', 'data_options', 'expand_runs', 'load_protocol', 'markdown', 'mean_std', 'plot', 'run_subprocess']

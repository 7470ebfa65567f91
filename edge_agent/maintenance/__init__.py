"""Predictive maintenance at the edge: condition features, streaming anomaly detection, NAB scoring.

Pure computations (no clock, no I/O) except :mod:`~edge_agent.maintenance.datasets` (reads the public
reference data) and :mod:`~edge_agent.maintenance.analyze` (reads a CSV file for the CLI).

* :mod:`~edge_agent.maintenance.features`: RMS, crest factor, kurtosis, spectra, band energies,
  bearing defect energies, trends of a waveform window or a scalar series.
* :mod:`~edge_agent.maintenance.anomaly`: per-tag streaming detectors and the anomaly alarm.
* :mod:`~edge_agent.maintenance.nab`: the Numenta Anomaly Benchmark's scoring rules.
"""

from edge_agent.maintenance.analyze import AnomalyInputError, ScoredPoint, score_csv, write_scores
from edge_agent.maintenance.anomaly import (
    DEFAULT_DETECTOR,
    DETECTORS,
    AlarmChange,
    AnomalyAlarm,
    Detector,
    GaussianDetector,
    TailEnsembleConfig,
    TailEnsembleDetector,
    make_detector,
)
from edge_agent.maintenance.bearing import BearingGeometry, FaultFrequencies
from edge_agent.maintenance.features import WaveformFeatures, waveform_features

__all__ = [
    "DEFAULT_DETECTOR",
    "DETECTORS",
    "AlarmChange",
    "AnomalyAlarm",
    "AnomalyInputError",
    "BearingGeometry",
    "Detector",
    "FaultFrequencies",
    "GaussianDetector",
    "ScoredPoint",
    "TailEnsembleConfig",
    "TailEnsembleDetector",
    "WaveformFeatures",
    "make_detector",
    "score_csv",
    "waveform_features",
    "write_scores",
]

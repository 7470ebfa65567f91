"""The training command line and its hyper-parameters (no TensorFlow needed): the card's recorded command
parses back to the same hyper-parameters, and bad values are refused with the option named."""

from __future__ import annotations

import pytest

from edge_agent.maintenance.train import HyperParameters, parse_args, training_command


def test_recorded_command_parses_back_to_the_same_hyper_parameters() -> None:
    hp = HyperParameters(window=60, cycle=True, repeats=2, smoothing=0.3, threads=2)
    command = training_command(hp)
    assert command.endswith("--window 60 --cycle True --smoothing 0.3 --repeats 2 --threads 2")
    args, parsed = parse_args(command.split()[3:])
    assert parsed == hp and not args.cv_only
    _, default = parse_args(["--cv-only", "--cycle", "false"])
    assert default == HyperParameters()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--cycle", "maybe"], "expected true or false, not 'maybe'"),
        (["--smoothing", "1.5"], "smoothing must be in [0, 1)"),
        (["--head", "lstm"], "head must be one of dense, gru"),
        (["--refit", "true", "--patience", "10"], "refit trains for a fixed number of epochs"),
        (["--members", "1"], "members (folds) at least 2"),
    ],
)
def test_bad_options_are_refused(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        parse_args(["--cv-only", *argv])
    assert excinfo.value.code == 2
    assert message in capsys.readouterr().err


def test_out_or_cv_only_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args([])
    assert "--out" in capsys.readouterr().err

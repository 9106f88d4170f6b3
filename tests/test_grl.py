"""Gradient reversal: identity forward, exactly -λ times the gradient back;
λ schedules and their round trip through a SpeechBrain checkpoint."""

import math

import pytest
import torch
from speechbrain.utils.checkpoints import Checkpointer

from speechbrain_grl.nnet.grl import (
    GradientReversal,
    GradientReversalFunction,
    LambdaSchedule,
)


@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0, 7.5])
def test_forward_is_identity_and_backward_is_minus_lambda(lam):
    torch.manual_seed(0)
    x = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(5, 7, dtype=torch.float64)
    layer = GradientReversal(lam)
    y = layer(x)
    assert torch.equal(y, x)
    y.backward(upstream)
    assert torch.equal(x.grad, -lam * upstream)


def test_reversal_matches_finite_differences_of_the_negated_loss():
    torch.manual_seed(0)
    lam = 0.7
    w = torch.randn(4, dtype=torch.float64, requires_grad=True)

    def loss(v):
        return (torch.tanh(v) ** 2).sum()

    loss(GradientReversalFunction.apply(w, lam)).backward()
    eps = 1e-6
    numeric = torch.zeros(4, dtype=torch.float64)
    with torch.no_grad():
        for i in range(4):
            d = torch.zeros(4, dtype=torch.float64)
            d[i] = eps
            numeric[i] = (loss(w + d) - loss(w - d)) / (2 * eps)
    torch.testing.assert_close(w.grad, -lam * numeric, rtol=1e-6, atol=1e-8)


def test_lambda_can_change_while_training_runs():
    layer = GradientReversal(1.0)
    x = torch.ones(2, requires_grad=True)
    layer(x).sum().backward()
    layer.lambda_ = 0.25
    x.grad = None
    layer(x).sum().backward()
    assert torch.equal(x.grad, torch.full((2,), -0.25))


def test_ganin_schedule_values():
    s = LambdaSchedule(lambda_max=2.0, kind="ganin", gamma=10.0,
                       total_steps=200)
    values = []
    for _ in range(201):
        p = s.current_step / 200
        expected = 2.0 * (2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0)
        assert s.value == pytest.approx(expected)
        values.append(s.value)
        s.step()
    assert values[0] == 0.0
    assert all(b > a for a, b in zip(values, values[1:200]))
    assert values[-1] == pytest.approx(2.0, rel=1e-4)
    # Past the horizon the ramp stays at its end.
    assert s.value == pytest.approx(values[-1])


def test_constant_schedule_and_bad_kind():
    s = LambdaSchedule(0.001)
    s.step()
    assert s.value == 0.001
    with pytest.raises(ValueError, match="ganin"):
        LambdaSchedule(1.0, kind="linear")


def test_schedule_survives_checkpoint_and_resume(tmp_path):
    s = LambdaSchedule(1.0, kind="ganin", total_steps=100)
    for _ in range(37):
        s.step()
    Checkpointer(tmp_path, {"lambda_schedule": s}).save_checkpoint()
    fresh = LambdaSchedule(1.0, kind="ganin", total_steps=100)
    assert fresh.value == 0.0
    Checkpointer(tmp_path, {"lambda_schedule": fresh}).recover_if_possible()
    assert fresh.current_step == 37
    assert fresh.value == s.value


def test_running_norm_reads_its_count_on_the_host_and_after_a_load():
    """The first batch sets the statistics, later ones move them by the
    momentum, also across a save and load (the host-side flag that spares
    a device sync per step must follow the loaded ``count``)."""
    from speechbrain_grl.nnet.running_norm import RunningNorm

    x1 = torch.tensor([[1.0, 10.0], [3.0, 30.0]])
    x2 = torch.tensor([[5.0, 50.0]])
    ref = RunningNorm(2, momentum=0.5)
    ref(x1)
    ref(x2)
    assert torch.allclose(ref.mean, torch.tensor([3.5, 35.0]))
    trained = RunningNorm(2, momentum=0.5)
    trained(x1)
    resumed = RunningNorm(2, momentum=0.5)
    resumed(x2)  # moves its statistics: the load must undo this
    resumed.load_state_dict(trained.state_dict())
    resumed(x2)
    assert torch.equal(resumed.mean, ref.mean)
    fresh = RunningNorm(2, momentum=0.5)
    fresh(x2)
    fresh.load_state_dict(RunningNorm(2).state_dict())  # count 0 again
    fresh(x1)
    assert torch.allclose(fresh.mean, torch.tensor([2.0, 20.0]))
    assert int(fresh.count) == 1

"""Ego integration and the route: exact against closed forms."""
from __future__ import annotations

import math

import numpy as np
import pytest

from worldmodel.sim.ego import EgoIntegrator, EgoState, HoldControl, TrackTrajectory
from worldmodel.sim.rewards import Route


def test_constant_speed_straight_and_circle():
    ego = EgoIntegrator(EgoState(0.0, 0.0, 0.0, 0.0, 8.0, 0.0), fps=10.0)
    states = ego.advance(HoldControl(8.0, 0.0), 10)
    assert states[-1].time_s == pytest.approx(1.0) and states[-1].x == pytest.approx(8.0) and states[-1].y == 0.0
    wheel = 0.1  # road-wheel angle -> a circle of radius wheelbase / tan(wheel)
    ego = EgoIntegrator(EgoState(0.0, 0.0, 0.0, 0.0, 8.0, 0.0), fps=10.0)
    end = ego.advance(HoldControl(8.0, wheel * 15.0), 20)[-1]
    radius = 2.8 / math.tan(wheel)
    assert end.yaw == pytest.approx(16.0 / radius)
    assert math.hypot(end.x, end.y - radius) == pytest.approx(radius)
    assert end.yaw_rate == pytest.approx(8.0 / radius)


def test_preview_does_not_move_the_ego():
    ego = EgoIntegrator(EgoState(0.0, 0.0, 0.0, 0.0, 5.0, 0.0), fps=10.0)
    preview = ego.preview(HoldControl(5.0, 0.0), 5)
    assert ego.state.x == 0.0 and preview[-1].x == pytest.approx(2.5)


def test_trajectory_tracking_reaches_the_waypoints():
    t = np.array([0.5, 1.0, 1.5, 2.0])
    waypoints = np.stack([6.0 * t, 0.3 * t ** 2], axis=-1)
    ego = EgoIntegrator(EgoState(0.0, 0.0, 0.0, 0.0, 6.0, 0.0), fps=10.0)
    states = ego.advance(TrackTrajectory(waypoints, np.zeros(3), 0.0), 20)
    assert np.hypot(states[-1].x - waypoints[-1, 0], states[-1].y - waypoints[-1, 1]) < 0.5


def test_route_projection_and_frames():
    route = Route.from_path(np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 0.0], [20.0, 10.0]]), np.full(4, 5.0))
    assert route.length == pytest.approx(10.0 + math.hypot(10, 10))
    s, d = route.project(np.array([4.0, 1.5]))
    assert (s, d) == (pytest.approx(4.0), pytest.approx(1.5))
    s, d = route.project(np.array([-2.0, -1.0]))
    assert (s, d) == (pytest.approx(-2.0), pytest.approx(-1.0))  # behind the start: negative progress
    moved = route.in_frame(np.array([10.0, 0.0, math.pi / 2]))
    np.testing.assert_allclose(moved.points[0], [0.0, 10.0], atol=1e-12)

"""The embedded procedural world: determinism, camera geometry, ego dynamics and the clips' actions."""
import cv2
import numpy as np
import pytest

from worldmodel.data.actions import Command, actions_from_ego_states
from worldmodel.data.synthetic import (CAMERAS, EgoVehicle, ProceduralWorld, Renderer, SyntheticDriving, WorldConfig,
                                       render_views, resolve_views, simulate_drive, world_for_script)

BARE = WorldConfig(curves=False, scenery=None, vehicles_per_100m_lane=0.0, time_of_day="day", lanes_backward=0)


def _to_ego(poses: np.ndarray, origin: np.ndarray) -> np.ndarray:
    c, s = np.cos(origin[2]), np.sin(origin[2])
    d = poses[:, :2] - origin[:2]
    return np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]], axis=1)


# ---------------------------------------------------------------------- dataset
def test_clip_contract_and_determinism():
    ds = SyntheticDriving(num_clips=4, num_frames=6, size=(72, 128), seed=3)
    a, b = ds[1], SyntheticDriving(num_clips=4, num_frames=6, size=(72, 128), seed=3)[1]
    assert a["frames"].shape == (6, 1, 72, 128, 3) and a["frames"].dtype == np.uint8
    assert a["frames"].tobytes() == b["frames"].tobytes()
    for key in ("trajectory", "speed", "angle", "goal"):
        assert np.array_equal(a["actions"][key], b["actions"][key])
    assert a["actions"]["command"] == b["actions"]["command"] and a["actions"]["valid"] == b["actions"]["valid"]
    assert all(a["actions"]["valid"].values())  # the procedural world measures every field exactly
    meta = a["meta"]
    assert meta["dataset"] == "synthetic" and meta["cameras"] == ["CAM_FRONT"] and meta["fps"] == 10.0
    assert meta["intrinsics"].shape == (1, 3, 3) and meta["extrinsics"].shape == (1, 4, 4)
    assert meta["ego_poses"].shape == (6, 3) and meta["ego_speed"].shape == (6,) and meta["ego_steering"].shape == (6,)
    np.testing.assert_allclose(np.diff(meta["timestamps"]), 0.1)
    assert meta["ego_speed"][0] > 0  # episodes start while driving
    other_seed = SyntheticDriving(num_clips=4, num_frames=6, size=(72, 128), seed=4)[1]
    other_split = SyntheticDriving(num_clips=4, num_frames=6, size=(72, 128), seed=3, split="val")[1]
    assert a["frames"].tobytes() != other_seed["frames"].tobytes()
    assert a["frames"].tobytes() != other_split["frames"].tobytes()
    assert a["frames"].tobytes() != ds[2]["frames"].tobytes()


def test_clip_trajectory_equals_its_simulated_poses_in_the_origin_frame():
    for origin_frame in (0, 3):
        clip = SyntheticDriving(num_clips=3, num_frames=25, size=(36, 64), seed=1, action_origin_frame=origin_frame)[2]
        poses = clip["meta"]["ego_poses"]
        future = origin_frame + np.array([5, 10, 15, 20])
        future = future[future < len(poses)]
        expected = _to_ego(poses[future], poses[origin_frame])
        np.testing.assert_allclose(clip["actions"]["trajectory"][:len(future)], expected, atol=1e-4)
        np.testing.assert_allclose(clip["actions"]["speed"][:len(future)], clip["meta"]["ego_speed"][future], atol=1e-4)
        np.testing.assert_allclose(clip["actions"]["angle"][:len(future)], clip["meta"]["ego_steering"][future],
                                   atol=1e-4)


@pytest.mark.parametrize("size", [(72, 128), (288, 512)])
def test_any_resolution_scales_intrinsics_and_shows_road_under_sky(size):
    clip = SyntheticDriving(num_clips=1, num_frames=1, size=size, seed=5, world=BARE)[0]
    frame = clip["frames"][0, 0].astype(int)
    assert frame.shape == (*size, 3)
    k_ref = CAMERAS["CAM_FRONT"].intrinsics((144, 256))
    scale = np.diag([size[1] / 256, size[0] / 144, 1.0])
    np.testing.assert_allclose(clip["meta"]["intrinsics"][0], scale @ k_ref, rtol=1e-5)
    bottom = frame[-1, size[1] // 2]
    assert np.ptp(bottom) < 30 and 40 < bottom.mean() < 140  # grey asphalt
    top = frame[0].mean(axis=0)
    assert top[2] > top[0] + 20 and top.mean() > bottom.mean()  # blue daytime sky, brighter than the road


def test_rig6_order_and_overlapping_fields_of_view():
    cams = resolve_views("rig6")
    assert [c.name for c in cams] == ["CAM_FRONT_LEFT", "CAM_FRONT", "CAM_FRONT_RIGHT", "CAM_BACK_RIGHT", "CAM_BACK",
                                      "CAM_BACK_LEFT"]
    yaws = [c.yaw_deg for c in cams]
    for a, b in zip(cams, cams[1:] + cams[:1]):
        gap = (a.yaw_deg - b.yaw_deg) % 360
        assert gap < (a.hfov_deg + b.hfov_deg) / 2, (a.name, b.name)  # neighbours overlap
    assert yaws == [55.0, 0.0, -55.0, -110.0, 180.0, 110.0]
    clip = SyntheticDriving(num_clips=1, num_frames=2, views="rig6", size=(36, 64))[0]
    assert clip["frames"].shape == (2, 6, 36, 64, 3) and clip["meta"]["extrinsics"].shape == (6, 4, 4)


# ---------------------------------------------------------------------- geometry
def _mirror_correlation(image: np.ndarray) -> float:
    """Correlation of the ground's whiteness (lane markings) with its left-right mirror image."""
    ground = cv2.blur(image[image.shape[0] // 2 + 2:].astype(np.float32).min(axis=-1), (3, 3))
    a = ground - ground.mean()
    b = a[:, ::-1]  # cx = w / 2 lies between the two middle columns, so the mirror is about cx
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def test_straight_road_is_symmetric_about_the_principal_point():
    world = ProceduralWorld(0, WorldConfig(curves=False, scenery=None, vehicles_per_100m_lane=0.0, lanes_forward=3,
                                           lanes_backward=0, ego_lane=1))
    pose = world.start_pose()
    assert pose[2] == 0.0 and abs(pose[1] - world.layout.lane_offset(1)) < 1e-9
    image = render_views(world, pose, 0.0, "front", (144, 256))[0]
    ground = image[80:].astype(int).min(axis=-1)
    assert (ground > 180).sum() > 100  # lane markings are visible
    assert _mirror_correlation(image) > 0.9
    # Half a lane-marking width off-centre, or a small yaw, already breaks the symmetry.
    for offset in (np.array([0.0, 0.3, 0.0]), np.array([0.0, 0.0, 0.03])):
        assert _mirror_correlation(render_views(world, pose + offset, 0.0, "front", (144, 256))[0]) < 0.75


def test_neighbouring_cameras_agree_on_ground_colours():
    world = ProceduralWorld(2, WorldConfig(curves=False, scenery=None, vehicles_per_100m_lane=0.0, lanes_forward=2))
    pose = world.start_pose()
    size = (144, 256)
    renderer = Renderer(world, resolve_views(["CAM_FRONT", "CAM_FRONT_RIGHT"]), size)
    images = renderer.render(pose, 0.0).astype(int)
    # Every ground pixel of CAM_FRONT (up to 40 m away) that CAM_FRONT_RIGHT also sees.
    front, right = renderer.cameras
    rows, cols = np.mgrid[size[0] // 2 + 4:size[0], 0:size[1]]
    pix = np.stack([cols.ravel() + 0.5, rows.ravel() + 0.5, np.ones(rows.size)])
    rays = np.linalg.inv(renderer.intrinsics[0]) @ pix
    rays = front.rotation() @ rays  # ego frame
    depth = -front.position[2] / rays[2]
    ground = np.asarray(front.position)[:, None] + depth * rays  # (3, n) points on z = 0
    p = right.rotation().T @ (ground - np.asarray(right.position)[:, None])
    uv = (renderer.intrinsics[1] @ p)[:2] / p[2]
    near = depth * np.linalg.norm(rays, axis=0) < 40
    seen = (p[2] > 0) & np.all((uv > 0) & (uv < [[size[1]], [size[0]]]), axis=0) & near
    assert seen.sum() > 300  # the two views overlap
    colours = [images[0, rows.ravel()[seen], cols.ravel()[seen]],
               images[1, uv[1, seen].astype(int), uv[0, seen].astype(int)]]
    diff = np.abs(colours[0] - colours[1]).mean(axis=1)
    assert np.median(diff) < 8
    # The points span different materials, so agreement is not a uniform image.
    assert colours[0].mean(axis=1).std() > 15
    shuffled = np.abs(colours[0] - np.random.default_rng(0).permutation(colours[1])).mean(axis=1)
    assert shuffled.mean() > 3 * diff.mean() + 3


# ---------------------------------------------------------------------- ego motion
def test_bicycle_model_constant_steering_is_an_exact_circle_positive_left():
    ego = EgoVehicle(x=0.0, y=0.0, yaw=0.0, speed=8.0)
    wheel = 0.1
    for _ in range(100):
        ego.step(0.02, 8.0, wheel * ego.steering_ratio)
    radius = ego.wheelbase / np.tan(wheel)
    yaw = 8.0 * 2.0 / radius
    np.testing.assert_allclose([ego.x, ego.y, ego.yaw], [radius * np.sin(yaw), radius * (1 - np.cos(yaw)), yaw],
                               atol=1e-9)
    assert ego.y > 0 and ego.steering_wheel > 0
    assert ego.speed == 8.0


def _drive(manoeuvre: str, target: float, seed: int = 1):
    script = [(0.0, "cruise", 10.0), (1.0, manoeuvre, target)]
    world = world_for_script(seed, script, WorldConfig(lanes_forward=2, ego_lane=0), duration_s=14.0)
    return world, simulate_drive(world, script, duration_s=14.0, fps=10.0)


def _actions_at(log, t0: float) -> dict:
    return actions_from_ego_states(log.timestamps, log.poses[:, :2], log.poses[:, 2], log.speeds, log.steering, t0)


@pytest.mark.parametrize("manoeuvre, command, sign",
                         [("turn_left", Command.LEFT, 1), ("turn_right", Command.RIGHT, -1)])
def test_turns_follow_a_bend_and_give_turn_actions(manoeuvre, command, sign):
    world, log = _drive(manoeuvre, 5.0)
    bend = next(b for b in world.road.bends if abs(b.angle) > 1.0)
    assert np.sign(bend.angle) == sign
    # Well inside the bend the ego is turning: waypoints to that side, steering that way, command to match.
    s = np.array([world.road.project(p[:2])[0] for p in log.poses])
    t_in = log.timestamps[np.argmax(s > bend.start_s + 8.0)]
    actions = _actions_at(log, t_in)
    assert actions["command"] == command
    assert np.all(sign * actions["trajectory"][:, 1] > 0) and np.all(sign * actions["angle"] > 0)
    heading_change = log.poses[-1, 2] - log.poses[0, 2]
    np.testing.assert_allclose(heading_change, bend.angle, atol=0.15)
    # The ego stayed in its lane through the bend.
    d = np.array([world.road.project(p[:2], s_hint=si)[1] for p, si in zip(log.poses, s)])
    assert np.max(np.abs(d - world.layout.lane_offset(world.ego_lane))) < 0.8


def test_braking_to_stop():
    _, log = _drive("stop", 0.0)
    actions = _actions_at(log, 1.0)
    assert np.all(np.diff(actions["speed"]) < 0)
    assert _actions_at(log, 3.5)["command"] == Command.STOP
    assert log.speeds[-1] == 0.0 and np.all(np.diff(log.speeds) <= 1e-12)


def test_lane_change_moves_one_lane_to_the_side():
    world, log = _drive("lane_change_left", 10.0)
    _, d_end = world.road.project(log.poses[-1, :2])
    np.testing.assert_allclose(d_end, world.layout.lane_offset(1), atol=0.2)
    actions = _actions_at(log, 1.0)
    assert np.all(actions["trajectory"][:, 1] > 0) and actions["angle"][0] > 0


def test_traffic_that_would_hit_the_ego_is_removed():
    world = ProceduralWorld(0, WorldConfig(curves=False, vehicles_per_100m_lane=3.0, lanes_forward=2, ego_lane=0))
    log = simulate_drive(world, [(0.0, "cruise", 20.0)], duration_s=8.0)
    before = len(world.traffic)
    removed = world.traffic.remove_conflicts(log.timestamps, log.poses[:, :2])
    assert removed > 0 and len(world.traffic) == before - removed > 0
    xy, _, on_road = world.traffic.positions(log.timestamps)
    gap = np.linalg.norm(xy - log.poses[None, :, :2], axis=-1)
    assert np.all(gap[on_road] >= 10.0)

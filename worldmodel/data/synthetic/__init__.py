"""The embedded procedural driving world: roads, scenery, traffic, an ego vehicle, a renderer and a Dataset."""
from worldmodel.data.synthetic.cameras import CAMERAS, RIGS, Camera, resolve_views
from worldmodel.data.synthetic.drive import random_script, simulate_drive, world_for_script
from worldmodel.data.synthetic.ego import DriveLog, EgoScript, EgoVehicle, Manoeuvre, speed_profile
from worldmodel.data.synthetic.lighting import Lighting, sample_lighting
from worldmodel.data.synthetic.reader import SyntheticDriving
from worldmodel.data.synthetic.render import Renderer, render_views
from worldmodel.data.synthetic.road import Bend, Road, RoadLayout
from worldmodel.data.synthetic.scenery import SceneryDensity
from worldmodel.data.synthetic.world import ProceduralWorld, WorldConfig

__all__ = [
    "CAMERAS", "RIGS", "Bend", "Camera", "DriveLog", "EgoScript", "EgoVehicle", "Lighting", "Manoeuvre",
    "ProceduralWorld", "Renderer", "Road", "RoadLayout", "SceneryDensity", "SyntheticDriving", "WorldConfig",
    "random_script", "render_views", "resolve_views", "sample_lighting", "simulate_drive", "speed_profile",
    "world_for_script",
]

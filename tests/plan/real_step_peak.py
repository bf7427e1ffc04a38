"""`python tests/plan/real_step_peak.py OVERRIDE...`: two real CPU training steps of a run; prints the bytes the steps add to
the resident memory (large allocations mmapped, so freed memory leaves RSS). The planner test compares with it."""
import os, resource, sys, torch
torch.set_num_threads(2)
from hydra.utils import instantiate
from worldmodel.config import compose_config
from worldmodel.training.trainable import freeze_idle_groups
from worldmodel.viz import from_uint8
def rss():
    with open("/proc/self/statm") as f: return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
cfg = compose_config("train", sys.argv[1:])
model = instantiate(cfg.model, _convert_="all").train()
obj = instantiate(cfg.objective, _convert_="all")
freeze_idle_groups(model, obj)
codec = instantiate(cfg.codec, _convert_="all")
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
b,t,v = cfg.data.batch_size, cfg.data.clip.num_frames, model.config.num_views
h,w = cfg.data.clip.size
frames = torch.zeros(b,t,v,h,w,3,dtype=torch.uint8)
nref = torch.full((b,), 3); acts = torch.zeros(b,19); valid = torch.ones(b,5,dtype=torch.bool)
def step():
    with torch.no_grad(): lat = codec.encode_video(from_uint8(frames))
    loss,_ = obj.training_loss(model, lat, nref, acts, valid)
    loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
base = rss()
weights = sum(p.numel()*4 for p in model.parameters())
step()
step()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(peak - base)

"""Evaluation: FID / FVD (frechet), their feature networks (features, i3d, i3d_weights, weights, safe_pickle),
SSIM, PSNR, and action following from ego motion seen in video (ego_motion, action_following)."""

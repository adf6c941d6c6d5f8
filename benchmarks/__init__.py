"""asv benchmark suite of spineaug (``make asv``); see README "Tracking speed with asv"."""

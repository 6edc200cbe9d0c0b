"""Training: synthetic history, the LightGBM training pipeline and the demo champion."""

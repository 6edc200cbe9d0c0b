"""Officers' review of flagged declarations: cases, their actions, and what the results teach."""

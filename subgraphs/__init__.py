"""The four Reelgraph subgraphs (auth, video, engagement, billing) and their shared kernel."""

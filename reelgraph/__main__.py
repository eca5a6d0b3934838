from reelgraph.cli import main

main()

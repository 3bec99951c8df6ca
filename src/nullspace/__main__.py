from nullspace.cli import main

main()

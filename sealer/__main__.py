from sealer.cli import main

main()

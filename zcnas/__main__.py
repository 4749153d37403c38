from zcnas.cli import main

main()

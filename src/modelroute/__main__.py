from modelroute.cli import main

main()

from queuectl.cli.app import main

main()

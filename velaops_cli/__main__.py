from velaops_cli.main import main

main()

from nebulaio.cli import main

raise SystemExit(main())

from hpcneuro.cli import main

raise SystemExit(main())

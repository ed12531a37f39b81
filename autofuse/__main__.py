from autofuse.cli import main

raise SystemExit(main())

from longcurate.cli import main

raise SystemExit(main())

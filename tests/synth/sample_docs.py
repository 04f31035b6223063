"""Four short documents for the openai-backend runs (each two ~32-token segments of whole sentences,
but the last: so multi-hop questions have pieces of one text to come from)."""

DOCS = [  # two paragraphs each: two ~32-token segments of whole sentences
    ("Lake Vostok", "Lake Vostok lies beneath the East Antarctic ice sheet at a depth of almost four kilometres. "
     "It is the largest of the subglacial lakes known on the continent, and its water has been isolated for "
     "millions of years.\nRussian scientists drilled into the lake in 2012 after decades of careful work. "
     "The borehole was sealed with kerosene to keep the ancient water free of surface microbes."),
    ("Ottawa", "Ottawa is the capital city of Canada and sits on the south bank of the Ottawa River. The city "
     "was chosen as the capital by Queen Victoria in 1857, partly because it lay far from the American border.\n"
     "Its parliament buildings stand on a hill above the river and draw many visitors every summer. "
     "In winter the Rideau Canal freezes into a skating lane nearly eight kilometres long."),
    ("Basalt", "Basalt is a fine-grained volcanic rock formed from the rapid cooling of lava rich in magnesium "
     "and iron. More than ninety percent of all volcanic rock on Earth is basalt, and it forms much of the "
     "ocean floor.\nColumns of basalt, such as those at the Giant's Causeway, form as thick lava flows cool. "
     "Crushed basalt is widely used as an aggregate in road building and railway ballast."),
    ("Tardigrade", "Tardigrades are tiny water-dwelling animals with eight legs, often called water bears. "
     "They survive extreme temperatures, pressures and radiation by entering a dried-out state called "
     "cryptobiosis.\nSpecimens have been revived after years without water in laboratory experiments. "
     "Some were even carried into low Earth orbit and survived the exposure to open space."),
]

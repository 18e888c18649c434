"""Word lists for the distillation corpus (corpus.py): written for this project, grouped by meaning
so that templates can pair verbs with nouns they fit ("feed the goat", never "bake the goat")."""

from __future__ import annotations


def _words(text: str) -> list[str]:
    """Single-word entries, separated by whitespace."""
    return text.split()


def _phrases(text: str) -> list[str]:
    """Multi-word entries, separated by semicolons."""
    return [p.strip() for p in text.split(";") if p.strip()]


# People and places: varied origins, so the voice hears many spelling patterns.
FIRST_NAMES = _words("""
James Emily Oliver Grace Henry Charlotte Samuel Lucy Thomas Hannah Daniel Sophie Benjamin Abigail
Jack Ruby William Ella George Alice Ethan Chloe Noah Olivia Liam Mia Lucas Zoe Owen Nora Caleb Ivy
Wyatt Hazel Miles Violet Felix Clara Arthur Iris Elliot Rose Theo Maggie Dylan Megan Connor Erin
Declan Fiona Callum Isla Rhys Gareth Ewan Mateo Sofia Diego Lucia Alejandro Valentina Javier Camila
Carlos Isabel Miguel Elena Rafael Carmen Pablo Marisol Joaquin Ximena Andres Paloma Thiago Beatriz
Rodrigo Leticia Giulia Marco Francesca Luca Chiara Matteo Alessia Giovanni Camille Julien Amelie
Mathis Manon Antoine Louise Hugo Margaux Etienne Lukas Hanna Jonas Greta Matthias Anja Sven Ingrid
Lars Astrid Freya Bjorn Sanne Pieter Maarten Elin Nils Sigrid Dmitri Katya Nikolai Anastasia Ivan
Milena Pavel Zofia Tomasz Marek Jana Bogdan Irina Yuri Nikos Eleni Dimitris Katerina Omar Layla
Yusuf Amira Karim Noor Hassan Fatima Tariq Zainab Samir Rania Khalid Yasmin Darius Parisa Reza Shirin
Emre Elif Mehmet Kerem Zeynep Priya Arjun Ananya Rohan Kavya Vikram Meera Aditya Divya Sanjay Nikhil
Lakshmi Rahul Deepa Farhan Ayesha Imran Hiroshi Yuki Kenji Aiko Haruto Sakura Takumi Mei Wei Jun
Lian Daichi Ren Hyun Jisoo Linh Minh Thanh Somchai Malee Ramon Rizal Putri Budi Siti Amara Kwame
Chidi Ngozi Thabo Zanele Kofi Abena Tunde Folake Jabari Nia Sipho Ayodele Emeka Adaeze Themba Wanjiru
Kamau Makena Tendai Avi Noa Eitan Tamar Yael Ari Kai Leilani Keanu Mana Aroha Koa Rowan Tamsin
Gideon Seraphina Bram Isolde Cedric Alaric Lyra Osric Wren Edric Godfrey Elspeth Percival Ambrose
Rosalind Leopold Cordelia Tobias Magnus Hilda Agatha Barnaby Mabel Silas Ezra Jasper Odette Marlowe
Juniper Soren Anika Mirela Stellan Ottilie Casimir Imogen Florian Beatrix Quentin Delphine
""")

SURNAMES = _words("""
Walker Bennett Harper Fletcher Carter Hughes Morgan Collins Reed Turner Hayes Brooks Foster Sullivan
Murphy Kelly Gallagher MacLeod Campbell Fraser Garcia Martinez Rodriguez Lopez Hernandez Morales
Castillo Ortega Silva Santos Oliveira Costa Pereira Rossi Bianchi Romano Ferrari Conti Moreau Dubois
Laurent Lefevre Girard Fontaine Muller Schmidt Becker Wagner Hoffmann Fischer Keller Jansen Bakker
Visser Lindqvist Andersson Nilsson Larsen Hansen Berg Johansson Kowalski Nowak Novak Petrov Sokolov
Volkov Horvat Popescu Papadopoulos Georgiou Haddad Khalil Nasser Mansour Rahimi Tehrani Yilmaz Demir
Kaya Patel Sharma Gupta Iyer Reddy Nair Khan Chaudhry Malik Tanaka Suzuki Sato Watanabe Yamamoto
Nakamura Kobayashi Kim Park Choi Kang Wang Zhang Liu Chen Huang Zhou Nguyen Tran Pham Reyes Cruz
Bautista Mendoza Okafor Adeyemi Mensah Owusu Nkosi Dlamini Mwangi Otieno Abebe Haile Diallo Traore
Cohen Levi Friedman Goldberg Kaplan Thornton Ashworth Blackwood Whitaker Pemberton Hawthorne
Ravenscroft Greenwood Holloway Marsh Crane Sterling Vance Quinn Nakashima Delgado Ibarra Villanueva
Okonkwo Lindgren Castellanos Baptiste Achterberg Winslow Kowalczyk Moretti Eriksen Fairweather
""")

CITIES = _phrases("""
London; Paris; Tokyo; Lagos; Nairobi; Cairo; Mumbai; Delhi; Bangalore; Karachi; Lahore; Dhaka;
Jakarta; Manila; Bangkok; Hanoi; Seoul; Busan; Osaka; Kyoto; Beijing; Shanghai; Taipei; Singapore;
Sydney; Melbourne; Brisbane; Perth; Auckland; Wellington; Toronto; Vancouver; Montreal; Calgary;
Chicago; Boston; Seattle; Denver; Austin; Dallas; Houston; Phoenix; Atlanta; Miami; Nashville;
Portland; Detroit; Philadelphia; Baltimore; Pittsburgh; Minneapolis; Sacramento; Honolulu;
Anchorage; Mexico City; Guadalajara; Bogota; Lima; Santiago; Buenos Aires; Montevideo; Quito;
Havana; Madrid; Barcelona; Seville; Valencia; Lisbon; Porto; Rome; Milan; Naples; Florence; Venice;
Turin; Berlin; Munich; Hamburg; Cologne; Frankfurt; Vienna; Zurich; Geneva; Amsterdam; Rotterdam;
Brussels; Antwerp; Copenhagen; Stockholm; Oslo; Helsinki; Reykjavik; Dublin; Edinburgh; Glasgow;
Manchester; Liverpool; Cardiff; Belfast; Bristol; Leeds; Prague; Warsaw; Krakow; Budapest;
Bucharest; Athens; Istanbul; Ankara; Beirut; Amman; Dubai; Doha; Tehran; Tashkent; Almaty;
Kathmandu; Colombo; Accra; Dakar; Addis Ababa; Kampala; Kigali; Johannesburg; Cape Town; Durban;
Casablanca; Marrakesh; Tunis; Lyon; Marseille; Bordeaux; Kyiv; Riga; Vilnius; Tallinn; Belgrade;
Zagreb; Ljubljana; Nagoya; Sapporo; Chennai; Kolkata; Hyderabad; Pune; Jaipur; Ottawa; Halifax;
Winnipeg; Edmonton; Quebec City; San Diego; New Orleans; Salt Lake City; Kansas City; Milwaukee
""")

COUNTRIES = _phrases("""
Canada; Mexico; Brazil; Argentina; Chile; Peru; Colombia; Spain; Portugal; France; Italy; Germany;
Austria; Switzerland; Norway; Sweden; Finland; Denmark; Iceland; Ireland; Scotland; Wales; England;
Poland; Greece; Turkey; Egypt; Morocco; Kenya; Nigeria; Ghana; Ethiopia; Tanzania; Japan; Korea;
China; India; Nepal; Vietnam; Thailand; Indonesia; Malaysia; Australia; Lebanon; Pakistan;
Bangladesh; Sri Lanka; Mongolia; Ecuador; Cuba; Jamaica; Croatia; Hungary; Romania; Estonia;
New Zealand; the Philippines; the Netherlands; Belgium; Uruguay; Senegal; Rwanda; Uganda; Tunisia
""")

LANGUAGES = _words("""
French Spanish Japanese Mandarin Arabic German Italian Portuguese Korean Hindi Swahili Russian Greek
Turkish Dutch Polish Vietnamese Tagalog Hebrew Swedish Finnish Urdu Bengali Persian Thai Indonesian
""")

# Pieces of invented-but-plain English town names ("Ashford", "Saltmere").
TOWN_HEADS = _words("""
Ash Oak Elm Thorn Stone Mill Bright Fair Green Red Black White Silver Gold Iron Frost Wolf Raven
Hawk Deer Fox Briar Willow Maple Cedar North East West South Lark Marsh Salt Wind Cold Bram Brook
Heather Amber Copper Glen Holly Moss
""")
TOWN_TAILS = _words("""
ford wood brook field haven vale ridge moor dale stead wick bury ton gate fall crest mere hollow
port watch keep bridge well cliff
""")
LANDMARK_ADJS = _words("Old Broken Silent Sunken Frozen Burning Crimson Hollow Shattered Forgotten Weeping Golden Black Lonely Whispering")
LANDMARK_NOUNS = _words("Tower Keep Gate Bridge Marsh Woods Peaks Abbey Mines Crossing Caverns Ruins Lighthouse Fortress Falls Hills")
STARS = _words("Vega Rigel Altair Sirius Deneb Antares Polaris Arcturus Procyon Capella Aldebaran Spica Castor Pollux Regulus Orion")
MOONS = _words("Mars Europa Titan Ganymede Callisto Io Ceres Phobos Enceladus Triton Venus Mercury Neptune Jupiter Saturn")
SHIP_ADJS = _words("Silver Crimson Distant Quiet Northern Restless Brave Wandering Iron Amber Steadfast Midnight")
SHIP_NOUNS = _words("Horizon Comet Falcon Sparrow Promise Voyager Lantern Meridian Tide Arrow Pilgrim Harbor")
STREET_KINDS = _words("Street Road Lane Avenue Way Drive Terrace Place Boulevard")
TREES = _words("Maple Cedar Willow Birch Chestnut Juniper Magnolia Sycamore Elm Poplar Linden Hawthorn")
TITLES = _phrases("Dr.; Mr.; Mrs.; Ms.; Captain; Professor; Detective; Sergeant; Lady; Lord; Commander; Chef; Coach; Judge; Mayor; Officer")

# Things: countable, portable objects any of the generic object verbs fit.
OBJECTS = _phrases("""
lantern; key; map; compass; notebook; letter; envelope; package; parcel; basket; bucket; rope;
candle; blanket; pillow; umbrella; backpack; suitcase; wallet; purse; ring; necklace; bracelet;
watch; coin; ticket; passport; phone; charger; laptop; tablet; camera; flashlight; hammer; wrench;
screwdriver; shovel; ladder; broom; kettle; teapot; mug; bowl; plate; spoon; knife; jar; bottle;
box; crate; barrel; sack; toolbox; radio; clock; mirror; towel; scarf; glove; helmet; lamp; vase;
painting; photograph; book; magazine; pencil; marker; ruler; stapler; folder; binder; calculator;
speaker; remote; battery; cable; adapter; keyboard; monitor; sticker; postcard; stamp; badge;
medal; trophy; puzzle; kite; ball; skateboard; tent; sleeping bag; fishing rod; thermos; lunchbox;
water bottle; first aid kit; toothbrush; diary; journal; calendar; poster; banner; flag; whistle;
bell; padlock; chain; hook; seashell; feather; pebble; pine cone; matchbox; spatula; ladle;
frying pan; saucepan; cutting board; teacup; napkin; tablecloth; doormat; flower pot;
watering can; wheelbarrow; rake; trowel; birdhouse; paintbrush; sketchbook; hourglass; globe;
telescope; microscope; magnifying glass; thermometer; stopwatch; jigsaw puzzle; snow globe;
music box; cookbook; guidebook; dictionary; atlas; briefcase; clipboard; lanyard; keychain;
pocketknife; measuring tape; extension cord; light bulb; smoke detector; doorbell; mailbox
""")
FANTASY_ITEMS = _phrases("""
sword; dagger; shield; bow; crossbow; axe; spear; staff; wand; amulet; talisman; crown; scepter;
chalice; goblet; potion; elixir; scroll; spellbook; relic; gemstone; ruby; sapphire; emerald;
pearl; cloak; gauntlet; helm; war horn; rune stone; dragon egg; crystal; orb; locket; quiver;
satchel; coin purse; lute; signet ring; hunting horn; silver key; old map; healing salve; mace;
warhammer; longbow; tinderbox; whetstone; lockpick; hand mirror
""")
WEAPONS = _words("sword dagger axe spear bow crossbow mace warhammer halberd blade saber rapier")
MONSTERS = _words("""
goblin troll ogre wolf bandit skeleton ghost dragon giant spider bear wraith witch sorcerer
necromancer pirate smuggler raider mercenary cultist zombie vampire werewolf serpent harpy griffin
golem imp boar bat rat scorpion hound warlock poacher deserter
""")
TROPHIES = _phrases("""
wolf pelts; bear claws; boar tusks; spider legs; troll teeth; goblin ears; harpy feathers;
griffin feathers; serpent scales; bat wings; rat tails; scorpion stingers; dragon scales;
ogre tusks; hound fangs; wolf fangs; bear pelts; fox tails; crow feathers; snake skins
""")
SCI_PARTS = _phrases("""
reactor; thruster; airlock; hull; main engine; shield generator; navigation console; cargo bay;
docking port; escape pod; oxygen tank; fuel cell; power core; sensor array; comms relay;
gravity plating; life support; warp drive; hyperdrive; targeting system; coolant pump; heat shield;
landing gear; stasis pod; cryo chamber; bulkhead; hatch; turbine; antenna; mainframe;
circuit board; capacitor; tractor beam; water recycler; solar array; docking clamp; airlock seal
""")
SCI_THINGS = _phrases("""
drone; android; robot; probe; satellite; beacon; transmitter; freighter; cruiser; starship;
shuttle; rover; asteroid; comet; signal; data pad; med kit; plasma rifle; scanner; cargo pod;
supply ship; mining barge; patrol ship; research vessel
""")

# Food and drink: countable ones take plurals, mass ones take "some".
FOOD_COUNT = _phrases("""
apple; pear; peach; plum; orange; banana; lemon; mango; melon; pineapple; strawberry; cherry;
carrot; potato; tomato; onion; cucumber; pepper; pumpkin; egg; sandwich; burger; taco; burrito;
dumpling; pancake; waffle; muffin; cookie; cupcake; donut; bagel; croissant; pretzel; biscuit;
pie; tart; pizza; sausage; meatball; pastry; scone; brownie; dinner roll; loaf; pickle; olive;
radish; turnip; avocado; coconut; lime; apricot; fig; spring roll; samosa; empanada; cinnamon roll
""")
FOOD_MASS = _phrases("""
soup; stew; rice; bread; cheese; butter; honey; jam; porridge; oatmeal; pasta; salad; chili;
curry; salmon; chicken; beef; lamb; tofu; yogurt; cereal; granola; popcorn; chocolate; ice cream;
lasagna; risotto; paella; sushi; ramen; hummus; guacamole; salsa; toast; bacon; ham; broth;
pudding; custard; spinach; broccoli; corn; fried rice; mashed potatoes; garlic bread; pesto;
couscous; polenta; lentil soup; apple pie; banana bread; pumpkin soup; roast chicken
""")
DRINKS = _phrases("""
coffee; tea; green tea; hot chocolate; lemonade; orange juice; apple juice; milk; sparkling water;
cider; mead; wine; smoothie; milkshake; iced tea; espresso; latte; cappuccino; cocoa; ginger ale;
root beer; chai; mint tea; mango lassi; cold brew
""")
ANIMALS = _words("""
dog cat horse cow sheep goat pig duck goose rabbit hamster parrot owl hawk eagle crow raven sparrow
robin pigeon swan heron fox deer moose bear wolf badger otter beaver squirrel raccoon hedgehog frog
toad turtle tortoise lizard snake trout shark whale dolphin seal penguin octopus crab lobster bee
butterfly moth beetle ant snail camel elephant giraffe zebra lion tiger leopard cheetah monkey
gorilla kangaroo koala panda llama alpaca donkey mule ferret goldfish flamingo pelican chipmunk
""")
JOBS = _phrases("""
baker; blacksmith; carpenter; teacher; nurse; doctor; dentist; pharmacist; librarian; firefighter;
police officer; mechanic; electrician; plumber; farmer; fisherman; sailor; pilot; engineer;
architect; chef; waiter; cashier; accountant; lawyer; judge; journalist; photographer; painter;
sculptor; musician; singer; dancer; actor; writer; poet; editor; translator; scientist; chemist;
biologist; astronomer; geologist; historian; professor; programmer; designer; gardener; florist;
butcher; tailor; cobbler; jeweler; potter; weaver; miner; stonemason; shepherd; innkeeper;
merchant; guard; soldier; knight; healer; herbalist; alchemist; scholar; scribe; hunter; ranger;
courier; bus driver; mail carrier; janitor; receptionist; store manager; surgeon; veterinarian;
paramedic; coach; referee; lifeguard; barista; bartender; mayor; ambassador; detective;
navigator; technician; botanist; archaeologist; zookeeper; beekeeper; lighthouse keeper;
locksmith; glassblower; brewer; ferry captain; tour guide; park ranger; dog walker; midwife
""")
VENUES = _phrases("""
bakery; library; museum; pharmacy; post office; train station; bus stop; airport; harbor; market;
grocery store; hardware store; bookshop; cafe; restaurant; diner; pub; hotel; hospital; clinic;
school; university; gym; park; playground; stadium; theater; cinema; concert hall; art gallery;
town hall; courthouse; fire station; police station; town square; pier; beach; campsite;
garden center; laundromat; barbershop; hair salon; pet store; toy store; shoe store; bank;
jewelry store; observatory; aquarium; zoo; boathouse; swimming pool; bowling alley; ice rink;
farmers market; flower shop; bike shop; car wash; gas station; community center; coffee shop;
dry cleaner; dentist's office; music store; ferry terminal; science center; botanical garden
""")
FANTASY_VENUES = _phrases("""
tavern; inn; forge; guild hall; temple; chapel; castle; watchtower; armory; stable; mill; granary;
apothecary; town gate; city wall; marketplace; docks; monastery; crypt; barracks; throne room;
mage tower; old well; village green; alchemist's shop; healer's hut
""")
NATURE = _words("""
river forest meadow valley mountain hill lake pond stream creek waterfall canyon cliff cave desert
glacier volcano island coast shore bay marsh swamp jungle prairie field grove woods ridge peak trail
cove lagoon reef spring tundra plateau ravine gorge oasis bog heath moor rainforest savanna
""")
ROOMS = _phrases("""
kitchen; living room; bedroom; bathroom; hallway; garage; attic; basement; home office; porch;
patio; dining room; laundry room; guest room; study; pantry; closet; nursery; sunroom; backyard
""")
SPOTS = _phrases("""
under the bed; behind the couch; in the top drawer; next to the fridge; on the back seat;
on the kitchen table; by the front door; in the glove compartment; under the stairs;
on the windowsill; in the laundry basket; behind the bookshelf; in your coat pocket;
on the top shelf; beside the bathtub; in the garden shed; under a pile of newspapers;
next to the coffee maker; inside the piano bench; on the bedside table
""")

# Describing words.
ADJS = _words("""
old new shiny rusty broken heavy light small tiny huge large little long short wooden metal silver
golden leather woolen glass paper plastic brass copper iron steel stone velvet cotton silk red blue
green yellow purple black white gray brown pink dark bright pale faded dusty dirty clean wet dry
warm cold empty spare extra strange mysterious ancient antique modern cheap expensive valuable
precious fragile sturdy cracked bent tangled torn worn polished painted carved engraved enchanted
cursed glowing humming folded sealed locked stolen borrowed favorite lucky matching missing smooth
rough sharp dull sticky soft hard round square flat tall narrow wide thin thick striped spotted
checkered handmade homemade secondhand battered elegant plain fancy ornate delicate bulky compact
portable waterproof squeaky rattling ticking blinking crooked lopsided gleaming tarnished dented
scratched chipped muddy frozen charred oversized miniature vintage
""")
MOODS = _words("""
tired happy nervous excited worried curious grumpy cheerful anxious calm patient brave clever kind
stubborn shy proud honest generous lonely hungry thirsty busy bored confused delighted furious
grateful hopeful jealous relieved restless sleepy surprised thoughtful upset cautious polite quiet
friendly gentle fierce loyal clumsy eager embarrassed exhausted impatient suspicious optimistic
amused homesick determined puzzled overjoyed frightened
""")
ADVERBS = _words("""
quickly slowly carefully quietly loudly gently suddenly finally happily sadly politely proudly
nervously eagerly patiently silently softly bravely calmly safely secretly rapidly steadily
immediately eventually reluctantly cheerfully
anxiously gracefully clumsily firmly warmly
""")
NICE = _words("""
beautiful lovely wonderful perfect peaceful delightful gorgeous charming splendid marvelous cozy
stunning amazing brilliant glorious fantastic magnificent pleasant terrific incredible
""")
ABSTRACTS = _words("""
courage patience honesty kindness wisdom loyalty freedom justice peace hope trust luck glory honor
pride silence truth balance curiosity ambition gratitude mercy friendship memory destiny harmony
discipline humor respect faith strength talent effort progress adventure mystery comfort confidence
creativity imagination knowledge experience practice persistence generosity
""")

# Pastimes, knowledge, culture.
ACTIVITIES = _phrases("""
hiking; painting; swimming; cooking; baking; reading; writing; gardening; fishing; knitting;
sewing; running; cycling; climbing; skiing; skating; surfing; sailing; camping; dancing; singing;
drawing; sketching; juggling; woodworking; birdwatching; stargazing; jogging; rowing; kayaking;
snowboarding; bowling; meditating; journaling; volunteering; traveling; shopping; studying;
brewing; carving; fencing; rock climbing; foraging; quilting; pottery; archery; horseback riding;
photography; embroidery; calligraphy; origami; chess; yoga; beekeeping; scuba diving
""")
SUBJECTS = _phrases("""
history; geography; chemistry; physics; biology; mathematics; algebra; geometry; economics;
philosophy; psychology; astronomy; literature; poetry; music theory; art history; engineering;
architecture; medicine; law; linguistics; statistics; botany; geology; ecology; anthropology;
archaeology; sociology; nutrition; accounting; marketing; computer science; robotics; meteorology;
oceanography; genetics; zoology; calculus; grammar; cartography
""")
GENRES = _phrases("""
jazz; blues; rock; classical music; folk music; country music; hip hop; reggae; soul; funk; disco;
pop; punk; bluegrass; gospel; flamenco; bossa nova; swing; opera; techno; ambient music;
lo-fi beats; piano music; acoustic covers; movie soundtracks; sea shanties; lullabies;
rain sounds; ocean waves; white noise; chamber music; salsa music; Celtic music; Afrobeat
""")
INSTRUMENTS = _words("""
piano guitar violin cello flute clarinet trumpet trombone saxophone harp drums banjo ukulele
accordion harmonica bass oboe tuba mandolin bagpipes xylophone organ lute fiddle tambourine
""")
SPORTS = _phrases("""
soccer; football; basketball; baseball; hockey; cricket; rugby; tennis; golf; volleyball;
badminton; table tennis; boxing; wrestling; cycling; curling; lacrosse; softball; handball;
water polo; gymnastics
""")
CLOTHES = _phrases("""
coat; jacket; sweater; scarf; hat; cap; shirt; blouse; dress; skirt; raincoat; hoodie; vest; tie;
belt; apron; uniform; robe; suit; beanie; cardigan; tracksuit; poncho; kimono; sari; blazer;
overcoat; waistcoat; bow tie; tuxedo; gown; windbreaker; turtleneck; bathrobe
""")
VEHICLES = _phrases("""
car; truck; van; bus; train; tram; bicycle; motorcycle; scooter; taxi; ferry; boat; canoe; kayak;
sailboat; ship; plane; helicopter; hot air balloon; carriage; wagon; cart; sled; tractor;
ambulance; fire truck; submarine; airship; rowboat; cable car
""")
RELATIVES = _phrases("""
brother; sister; cousin; aunt; uncle; grandmother; grandfather; niece; nephew; neighbor;
roommate; coworker; best friend; boss; landlord; mother; father; son; daughter; wife; husband;
partner; godmother; stepbrother; mentor; apprentice; business partner; piano teacher
""")
WEEKDAYS = _words("Monday Tuesday Wednesday Thursday Friday Saturday Sunday")
MONTHS = _words("January February March April May June July August September October November December")
SEASONS = _words("spring summer autumn winter fall")
HOLIDAYS = _phrases("""
New Year's Day; Valentine's Day; Halloween; Thanksgiving; the summer solstice; Diwali; Eid;
Lunar New Year; Hanukkah; Christmas; Easter; Midsummer; the harvest festival; graduation;
your birthday; the wedding; spring break; the long weekend; Independence Day; the school play
""")
WEATHER = _words("sunny cloudy overcast rainy drizzly foggy misty windy stormy snowy humid muggy chilly breezy clear hazy frosty icy mild")
WEATHER_EVENTS = _phrases("""
light rain; heavy rain; thunderstorms; scattered showers; snow flurries; sleet; hail;
strong winds; dense fog; freezing rain; a heat wave; a cold front; gusty winds; patchy drizzle
""")

# Verbs that fit any portable object: base and past forms.
OBJECT_VERBS = [tuple(p.split(":")) for p in _words("""
find:found lose:lost drop:dropped carry:carried bring:brought take:took keep:kept hide:hid
sell:sold buy:bought borrow:borrowed return:returned wrap:wrapped pack:packed clean:cleaned
check:checked examine:examined inspect:inspected move:moved grab:grabbed hold:held store:stored
label:labeled deliver:delivered fetch:fetched repair:repaired fix:fixed steal:stole trade:traded
weigh:weighed polish:polished paint:painted open:opened forget:forgot mail:mailed measure:measured
collect:collected recover:recovered unwrap:unwrapped order:ordered replace:replaced drag:dragged
""")]
# Past tenses that need no object: reactions and movements.
INTRANSITIVE = _words("""
laughed smiled waited shouted sighed nodded paused hesitated agreed apologized shrugged frowned
grinned complained blushed winced gasped chuckled giggled yawned waved groaned coughed sneezed
""")


# Errands in base form, so they fit "remind me to ...", "don't forget to ...".
TASKS = _phrases("""
water the plants; take out the trash; call my sister; pick up the dry cleaning; feed the cat;
walk the dog; pay the electric bill; book a dentist appointment; buy milk on the way home;
return the library books; charge my phone; check the oven; lock the front door; send the invoice;
finish the report; renew my passport; pick up the kids from school; stretch before bed;
email the landlord; order more printer paper; defrost the chicken; move the car;
bring the laundry in; cancel the gym membership; wish Grandma a happy birthday;
take my vitamins; back up the laptop; reply to the wedding invitation; clean the fish tank;
mow the lawn; schedule the car inspection; buy a birthday card; pack lunch for tomorrow;
refill the bird feeder; vacuum the stairs; sign the permission slip; change the air filter;
put the recycling out; drink more water; stand up and stretch; practice the speech;
check the tire pressure; pick up the prescription; call the bank; update the budget;
wrap the presents; confirm the hotel booking; print the boarding passes; fix the leaky faucet;
buy stamps; return the rental car; feed the sourdough starter; clean out the fridge;
send the photos to Mom; switch off the porch light; book a table for Friday; pay the rent;
charge the electric car; water the tomatoes; dust the bookshelves; pick up fresh bread;
call the plumber; set out the good plates; repot the fern; study for the quiz;
sweep the porch; wash the car; hang up the new curtains; sort the mail
""")
SKILLS = _phrases("""
ride a bicycle; bake sourdough bread; change a tire; tie a sailor's knot; read a map; juggle;
swim; whistle; knit a scarf; fix a leaky faucet; pick a lock; build a campfire; sharpen a knife;
brew coffee without a machine; make pancakes from scratch; sew on a button; drive a tractor;
skip a stone; paddle a canoe; write a haiku; fold a paper crane; milk a goat; shoe a horse
""")
SHORT_LINES = _phrases("""
Watch out!; Over here!; Run!; Get down!; Hold on!; Not again.; Follow me.; Good morning!;
Thank you!; Well done!; Nice shot!; Stay close.; I'm ready.; Let's go!; Behind you!;
Keep moving!; Time's up.; Sounds good.; Of course.; No problem.; Right away.; Got it.;
Hang on a second.; You made it!; Hold the line!; Shields up!; Engines online.; Lights off.;
All clear.; Incoming!; Nice to meet you.; See you soon!; Happy birthday!; Take cover!;
Open the gate!; Sleep well.; That was close!; Good night.; Excuse me.; Not today.; Try again.;
Almost there.; Say that again?; Who goes there?; Where are we?; Is it safe?; Ready?;
Are you hurt?; What happened?; Any questions?; Be careful.; Stop right there!; Quiet, please.;
Oh, hello!; Come in.; Welcome home.; Coming through!; Don't move.; Great job!; Way to go!;
Fall back!; Move, move, move!; Done and done.; Pause the music.; Next song, please.;
Turn it up!; Good luck!; Cheers!; Bless you.; Oh no!; Hurry up!; Nice try.; I'm sorry.;
Leave me alone.; Not bad at all.; You again?; Say cheese!; Lights on.; Alarm stopped.
""")
EVENTS = _phrases("""
a dentist appointment; a team meeting; yoga class; a parent-teacher conference; piano lessons;
a haircut; the quarterly review; soccer practice; the book club; a doctor's appointment;
a job interview; the farmers market; a vet appointment; a video call; the board meeting;
swimming lessons; a cooking class; choir practice; the science fair; a budget review
""")
PETS = _words("dog cat parrot tortoise rabbit horse goldfish hamster ferret pony canary lizard")
SHOPS = _phrases("bakery; cafe; bookshop; bike shop; flower shop; restaurant; bakery and cafe; record store; tea room")

# Sentence templates for corpus.py: one sentence (or two short ones) each, grouped by the kind of text a
# TTS server receives. "{a|b}" picks an option, "{slot}" fills a slot (see corpus.SLOTS), "{a:adj object}"
# adds "a"/"an", "{pl:object}" makes a plural; braces nest, so "{{season}|{month}}" picks a slot.
TEMPLATES: list[str] = [
    # Fantasy game characters: quest givers, merchants, guards, companions.
    "Travelers, beware: {pl:monster} have been seen on the road to {town}.",
    "If you clear the {pl:monster} out of {landmark}, I'll pay you {gold}.",
    "Halt! State your business in {town}, stranger.",
    "The road to {town} isn't safe after dark, so keep your {weapon} close.",
    "I'll let this {adj} {fitem} go for {gold}, and not a coin less.",
    "My {relative} went into the {forest|woods|mountains|marsh|caves|hills|swamp|valley} {ago} and hasn't come back.",
    "Welcome to {town}! You'll find the {fvenue} just past the {bridge|old mill|fountain|market square}.",
    "Take this {fitem}; it once belonged to {name} the {job}.",
    "Did {name} send you, or did you come for the {fitem}?",
    "We march on {town} at dawn, so sharpen your {weapon} and get some rest.",
    "Those {pl:monster} took everything we had, even my grandmother's {fitem}.",
    "What brings you to {town}, {traveler|stranger|friend}?",
    "Bring me {numw} {trophy} and the reward is yours.",
    "Stay behind me, {name}; I'll deal with the {monster}.",
    "We're down to {numw} healing potions, so try not to get hit.",
    "Rest here tonight; the {pl:monster} never cross running water.",
    "The {blacksmith|smith|armorer|weaponsmith} in {town} can mend that {weapon} for {gold}.",
    "Have you come about the {monster} near {landmark}?",
    "Lady {surname} wants this {fitem} delivered to {landmark} before the next full moon.",
    "Keep your voice down, {name}; the {pl:monster} can hear us.",
    "Is it true that {name} fought off {a:monster} with nothing but {a:object}?",
    "Finest {pl:fitem} in all of {town}, {friend|traveler|stranger}!",
    "Watch out for the {monster}, {name}!",
    "We did it, {name}! The {fitem} is ours!",
    "Never trust {a:monster} who offers you free {foodm}.",
    # Science fiction.
    "Warning: hull breach detected on deck {n}.",
    "Captain {surname}, the {scipart} is running at {pct} capacity.",
    "We'll reach {station} in {n} hours if the {scipart} holds together.",
    "Docking clearance granted for bay {n}. Welcome to {station}.",
    "Can you reroute power from the {scipart} to the {scipart}?",
    "Long-range scanners picked up {numw} unknown ships near {moon}.",
    "Oxygen reserves are at {pct}, which gives us about {n} hours.",
    "Who authorized the launch of {ship}?",
    "The colony on {moon} hasn't answered our signals in {n} days.",
    "Set a course for {star} and keep us clear of the {asteroid belt|nebula|debris field|ion storm}.",
    "Is the {scipart} supposed to make that noise?",
    "The manifest lists {num} crates of {medical supplies|spare parts|frozen rations|seed stock}, but I only count {n}.",
    "Commander {surname}, {ship} is requesting permission to dock.",
    "Incoming transmission from {station}; should I put it through?",
    "That {scithing} has been following us since we left {moon}.",
    "I'll trade you {credits} for that {plasma rifle|data pad|scanner|med kit|drone|fuel cell|power core}, no questions asked.",
    # Modern-day game characters.
    "Officer {surname} wants a word with you about the {adj} {object} you found.",
    "The last bus to {city} leaves at {time}, so don't be late.",
    "You look lost. Are you looking for the {venue}?",
    "I'll give you {price} for that {object}, and that's a fair deal.",
    "Meet me behind the {venue} at {time}, and come alone.",
    "Stay away from the {venue} tonight; something isn't right in there.",
    "Hey, {name}! Did you get my message about the {party|concert|game|audition}?",
    "Nobody has seen {full} since the {party|concert|storm|wedding|festival} last {weekday}.",
    "Help me get this {object} to the {venue} and I'll buy you lunch.",
    # Assistant and chatbot replies.
    "Sure, here's a quick overview of {subject} for beginners.",
    "Sorry, I couldn't find any {pharmacies|bakeries|gas stations|coffee shops|hardware stores|bike shops|laundromats|grocery stores} near {city} that are open right now.",
    "I've added {foodm} and {pl:food} to your shopping list.",
    "Here are {numw} ideas for {a:nice} weekend in {city}.",
    "I can help with that, but which {object} do you mean, the {adj} one or the {adj} one?",
    "Your order of {n} {pl:object} should arrive on {weekday}.",
    "That sounds frustrating. Would you like me to walk you through resetting your {phone|router|password|tablet|smart speaker}?",
    "The best way to learn {lang} is to practice a little every day.",
    "I've translated your message into {lang}. Would you like me to read it aloud?",
    "Happy {ord} birthday, {name}! I hope it's {a:nice} one.",
    "Your package from {city} was delivered at {time} and left by the front door.",
    "While you were out, {full} called twice and left a voicemail.",
    "Done! I told {name} you'll be about {n} minutes late.",
    "Would you like directions to the {venue} by car, by bus, or on foot?",
    "Flight {flight} to {city} is on time and boards at gate {n}.",
    "The {venue} on {street} closes at {4|5|6|7|8|9}:{00|30} today.",
    "For this recipe you'll need {2|3|4} cups of flour, {numw} eggs, and a pinch of salt.",
    "There are {num} days left until {holiday}.",
    "Your balance is {price}, and your last payment went through on {date}.",
    "You spent {price} on groceries this week, about {pct} more than last week.",
    "I found {n} recipes that use {foodm}. Shall I read you the first one?",
    "Okay, notifications are muted until {time}.",
    "I'm not completely sure, but I think {town} is about {num} miles from {city}.",
    "Great choice! You can't go wrong with {genre} on {a:weather} afternoon.",
    "I can't do that yet, but I can remind you to {yourtask} instead.",
    "{name} shared {numw} photos from the trip to {country}.",
    "According to your notes, {name} prefers {drink} to {drink}.",
    "Your appointment with {titled} is confirmed for {date} at {time}.",
    # Smart-speaker answers: weather, timers, alarms, reminders, music, calendar, home.
    "Right now in {city} it's {now}.",
    "Tomorrow will be {forecast}.",
    "Expect {wevent} this afternoon, so take your {umbrella|raincoat|rain boots}.",
    "The chance of rain in {city} on {weekday} is {1|2|3|4|5|6|7|8|9}0%.",
    "Your timer for {dur} is set.",
    "Timer set for {dur}, starting now.",
    "You have {dur} left on the {pasta|laundry|tea|bread|cookie|pizza} timer.",
    "Your alarm is set for {5|6|7|8|9}:{00|15|30|45} tomorrow morning.",
    "Okay, I'll remind you to {yourtask} at {time}.",
    "Reminder: {yourtask} before {time}.",
    "You asked me to remind you to {yourtask} this {morning|afternoon|evening}.",
    "Now playing {genre} from your {playlist} playlist.",
    "Playing the latest album by {full}.",
    "Volume set to {n}.",
    "Here's a playlist of {genre} for your {activity} session.",
    "You have {numw} events today, starting with {event} at {clock}.",
    "Your meeting with {titled} has been moved to {weekday} at {time}.",
    "Next on your calendar is {plan} on {date}.",
    "Nothing is scheduled for {weekday} afternoon, so you're free.",
    "The {sport} game starts at {time}, and {city} is favored to win.",
    "It's {clock} in {city} right now.",
    "The nearest {venue} is {1|2|3|4|5}.{1|2|4|5|8} miles away, about {1|2}{0|2|5} minutes by car.",
    "The {room} lights are now at {pct}.",
    "I've set the thermostat to {thermo} degrees.",
    "The front door is locked, and the {garage door is closed|porch light is on|alarm is armed}.",
    "Today is {weekday}, {month} {ord}.",
    "Sunrise in {city} is at {5|6|7}:{1|2|4}{0|5} and sunset is at {5|6|7|8}:{0|3|5}{2|8} this evening.",
    "Your {drink} from the coffee shop will be ready in {n} minutes.",
    "Traffic is heavy on {street}, so leave {n} minutes early for {plan}.",
    # Questions people ask, or characters ask them.
    "What time does the {venue} open on {weekday}?",
    "How many {pl:object} did {name} bring?",
    "Where did you put the {adj} {object}?",
    "Why is there {a:adj object} {spot}?",
    "Who told {name} about the {surprise party|missing money|broken window|new job|secret door}?",
    "Can you play some {genre}?",
    "Is {name} coming to the party on {weekday}?",
    "Have you ever been to {city}?",
    "Do you know how to {skill}?",
    "Would you rather go {goact} or stay home and {clean the kitchen|watch a movie|bake cookies|read a book|play board games|take a nap}?",
    "How long does it take to fly from {city} to {city}?",
    "Which of these {pl:object} belongs to {name}?",
    "What's the weather like in {city} this {weekend|morning|evening}?",
    "Did anyone feed the {dog|cat|goldfish|rabbit|hamster|parrot|chickens|goats} this morning?",
    "How much does the {adj} {object} cost?",
    "When was the old {bridge|cathedral|library|lighthouse|train station|town hall} in {city} built?",
    "Could you remind me what {name} said about the {object}?",
    "Are you sure this road leads to {town}?",
    "Should we take the {vehicle} or walk?",
    "What's {num} times {n}?",
    "What is {pct} of {num}?",
    "Isn't it a little late to go {goact}?",
    "How old is {name}'s {pet}?",
    "Who won the {sport} final in {ryear}?",
    "Was {name} really born in {city} in {byear}?",
    "Why did the {job} leave {town} in such a hurry?",
    "Do you take cards, or is it cash only at the {venue}?",
    "Where's the nearest {venue}?",
    "Is the {venue} still open, or did it close at {clock}?",
    "How do you say {good morning|thank you|goodbye|happy birthday|excuse me} in {lang}?",
    "What did {name} and {name} find {spot}?",
    "Are there any {pl:food} left, or did {name} eat them all?",
    "Can you tell me a story about {a:mood animal} and {a:monster}?",
    "Would you mind {closing the window|holding this {object}|watching my {object}} for a minute?",
    "What year did {full} move to {country}?",
    "Is {drink} healthier than {drink}?",
    "Why are the {pl:monster} so restless tonight?",
    "Do you think {name} will like {a:adj object} for {holiday}?",
    "Can you believe the {cafe|stadium|museum|airport|cinema|hotel} charges {price} for a cup of {cupdrink}?",
    "Could you set a timer for {dur}?",
    "What's on my calendar for {weekday}?",
    "Can you add {pl:food} to my shopping list?",
    "Will it be {weather} in {city} tomorrow?",
    "What's the capital of {country}?",
    "How far is {city} from here?",
    "Do you have any rooms available for {numw} nights starting {weekday}?",
    "Is there {a:venue} within walking distance of {street}?",
    "Where were you on the night of {month} {ord}, {name}?",
    "Have you seen {a:adj fitem} anywhere around here?",
    "Which way to {landmark}?",
    "How much gold do you want for the {fitem}?",
    "What happened to the crew of {ship}?",
    "Can the {scipart} survive another jump?",
    "Is anyone else hearing that {humming|beeping|scratching|knocking} sound?",
    "Why would {name} hide the {object} {spot}?",
    "How many {ducks|geese|swans|herons|pigeons|sparrows|crows} did you count at the {lake|river|pond|park} this morning?",
    "Who's going to {ourtask} while we're in {city}?",
    "Did {name} ever pay you back the {price}?",
    "How many days are left until {holiday}?",
    "Do you think the {pl:monster} will attack tonight?",
    "What do you recommend, the {foodm} or the {foodm}?",
    "Could you {repeat that|say that again|spell that} {more slowly|one more time}, please?",
    "Would you like me to call {name} back now or after {time}?",
    "Are you still planning to learn to {skill} this {season}?",
    "Why does {name} always {order the same thing|arrive late|sit by the window|hum while cooking}?",
    # Exclamations and short lines.
    "What {a:nice} {day|morning|evening|view|surprise|idea}!",
    "I can't believe {name} {ovp} the {adj} {object}!",
    "Congratulations on your {ord} anniversary, {name} and {name}!",
    "Oh no, the {foodm} is burning!",
    "Look at all those {pl:animal}!",
    "Hurry, the {vehicle} leaves in {n} minutes!",
    "{name}, look out!",
    "Run, {name}, run!",
    "{Nice work|Well done|Good thinking|Great catch|Thanks a lot|Not bad}, {name}!",
    "{Welcome back|Good morning|Good night|Sweet dreams|Goodbye}, {name}.",
    "{short}", "{short}", "{short}",
    "That's the {best|worst|strangest} {food} I've ever tasted!",
    # Everyday statements, narration and numbers.
    "{name} {ovp} the {adj} {object} {spot}.",
    "My {relative} works as {a:job} in {city}.",
    "{name} and {name} are planning a trip to {country} next {{season}|{month}}.",
    "After a long day of {activity}, {name} felt {tired|exhausted|sore|sleepy|hungry} but {happy|proud|relaxed|satisfied|cheerful|grateful}.",
    "{name} learned {subject} from a retired {job} in {city}.",
    "There's {a:adj object} on the {counter|porch|stairs|doorstep}, but nobody knows whose it is.",
    "We should {task} before {name} gets home.",
    "{name} {gasped|laughed|sighed|winced|jumped|groaned|giggled|flinched} {loudly|quietly|nervously|suddenly|softly} when the {object} {fell off the shelf|rolled under the table|slipped out of the bag}.",
    "A little {patience|kindness|humor|courage|gratitude|practice|effort|generosity|respect|confidence|curiosity|honesty} goes a long way.",
    "The {pl:animal} at the {zoo|wildlife park|sanctuary} seem {restless|sleepy|calm|playful|grumpy|hungry|cheerful|nervous|curious|lazy} today.",
    "{titled} said the {object} was at least {2|3|4|5|6|8}0 years old.",
    "{name} has been {activity} every {weekday} since {year}.",
    "I met {full} at {a:subject} conference in {city}.",
    "The {ord} chapter of {name}'s new book takes place in {city}.",
    "Grandpa always said that {abstract} is worth more than gold.",
    "{name} wore {a:color clothes} to {event}.",
    "The {job} gave {name} {numw} {pl:food} and a cup of {cupdrink}.",
    "It took {name} {dur} to {skill}.",
    "Our {relative} in {city} sent us a box of {pl:food}.",
    "The {vehicle} to {town} was packed with {pl:job} and their {dogs|chickens|goats|cats|ducks|sheep|parrots}.",
    "{name} says {drink} tastes better in {city}.",
    "{name}'s {relative} moved to {city} in {year}.",
    "The museum in {city} has {a:adj fitem} that is over {1|2|3|4|5|6|7|8|9}00 years old.",
    "{name} finished {race} runners in the {city} marathon.",
    "Tickets cost {tickets} for children under {n}.",
    "{roomfloor}, next to the {elevator|stairs|vending machines|ice machine}.",
    "Call {name} at {phone} after {clock}.",
    "The population of {town} grew from {growth} in just {n} years.",
    "On {date}, {full} opened a small {shop} in {city}.",
    "The temperature dropped to {coldtemp} overnight in {city}.",
    "Chapter {n} begins on page {num}.",
    "Stir in {half a|a quarter|three quarters of a|one} cup of {sugar|milk|broth|cream|flour|oats|grated cheese|water} and simmer for {5|10|15|20|25|30|40} minutes.",
    "Your total comes to {price}, including tax.",
    "The invoice for {price} is due on {date}.",
    "Version {dec} fixes {num} bugs and improves battery life.",
    "The {ord} person in line gets a free {drink}.",
    "The {city} office opens at {7|8|9|10}:{00|30} a.m. and closes at {4|5|6|7|8}:{00|30} p.m.",
    "The train to {town} takes {{n} hours and {10|20|40|50} minutes|{25|35|45|55} minutes} and costs {price}.",
    "In {year}, {full} traveled from {city} to {city} in {num} days.",
    "Only {pct} of the votes had been counted by {time}.",
    "The {venue} raised ${1|2|3|4|5|6|7|8|9}{0|2|5},{0|5}00 for the new {playground|library wing|roof|community garden}.",
    "{name} was born on {month} {day}, {byear} in a small town near {city}.",
    "The score is {score} with {n} minutes left in the {quarter} quarter.",
    "Dial {phone} and ask for {titled}.",
    "Save {1|2|3|4|5}{0|5}% on all {pl:object} this weekend only!",
    "{name} scored {n} points in the last {n} minutes.",
    "If you see {full}, tell them the {object} is ready.",
    "{name} is the best {job} in {town}, and everyone knows it.",
    "The smell of {foodm} always reminds {name} of {season} in {country}.",
    "Please don't leave your {object} {spot} again.",
    "Put the {object} back {spot} when you're done.",
    "Thanks for waiting. Your {drink} is ready.",
    "{name} was {upset|relieved|worried|annoyed|surprised|disappointed} that the {venue} had closed early.",
    "{name} thinks {pl:pet} make better pets than {pl:pet}.",
    "Honestly, I'd rather be {activity} than sitting in this meeting.",
    "{name} {ipast}, picked up the {object}, and {adv} walked out of the room.",
    "The {pl:job} of {town} are going on strike tomorrow.",
    "{name} would rather learn to {skill} than study {subject}.",
    "Without {abstract}, even the best plan falls apart.",
    "Every {weekday}, {name} plays the {instrument} at the {cafe|pub|diner|hotel bar|farmers market|wedding chapel} for ${2|3|4|5|6|8}0 an hour.",
    "My {relative} just bought {a:color vehicle} and named it after {name}.",
    # Long compound sentences (20 to 35 words), each a coherent little story.
    "{name} left {city} early on {weekday} morning, drove {2|3|4|5|6|8}0 miles through {wevent}, and still made it to the {wedding|interview|concert|meeting} before {clock}.",
    "Although the {bus|train|ferry|tram} to {city} was running almost {n} minutes late, {name} used the time to {task}, and nobody even noticed.",
    "By the time we reached {town}, the {pl:monster} had already burned the {fvenue}, so we camped by the {nature} and waited for {name}.",
    "The {fvenue} in {town} burned down in {year}, but the {masons|carpenters|villagers|townsfolk|monks} rebuilt it stone by stone, and it still stands today.",
    "I heard that {full} got a new job as {a:job} in {city}, and that the whole family threw a party to celebrate.",
    "If you take the {adj} {fitem} to {landmark} before sunset, {name} the {job} will reward you with {gold} and a warm meal.",
    "We were only {n} days away from {station} when the {scipart} failed, so the crew rerouted power from the {scipart} and hoped for the best.",
    "Your flight to {city} leaves at {time} from gate {n}, so you should leave home by {clock}, and don't forget your passport.",
    "Tomorrow will be {forecast}, so it might be a good idea to {water the garden early|bring a jacket|check the forecast again in the morning}.",
    "Did you know that {name} spent {n} years {activity} in {country} before moving to {city} and opening a small {shop}?",
    "When {name} finally opened the {adj} {object}, there was nothing inside but {a:adj object}, {numw} old {pl:object}, and a note in {lang}.",
    "Our team was ahead by {n} points at halftime, but {city} scored twice in the last {n} minutes, and we lost the {sport} final.",
    "Before you head out, remember to {yourtask}, {yourtask}, and {yourtask}, because {name} is coming over at {clock}.",
    "The {venue} on {street} is closed for repairs until {date}, so the nearest one is about {n} blocks away, across from the {venue}.",
    "{name} and {name} argued about {subject} for almost an hour, and in the end they agreed that neither of them really knew much about it.",
    "Because the forecast calls for {wevent} all weekend, the {sport} match in {city} has been moved to {weekday} at {clock}, and old tickets are still valid.",
    "The navigator says we can reach {star} in {n} days if the {scipart} holds, but if it fails again, we'll be drifting for weeks.",
    "I'm sorry, but the {adj} {object} you ordered on {date} is out of stock, so we've refunded {price} to your card.",
    "As the sun went down over the {nature}, {name} lit the {lantern|campfire|candles}, unpacked the {foodm}, and told us stories about {town}.",
    "After {n} long weeks on the road, the caravan finally reached {town}, where the merchants sold their {pl:fitem} and the guards bought everyone a round of {mead|cider|ale}.",
    "Just before turning {3|4|5|6|7}0, {name} decided to learn to {skill}, signed up for lessons at the {community center|library|university} in {city}, and loved every minute.",
    "The {ord} time the {alarm|doorbell|smoke detector} went off, {name} finally got up, made a pot of {coffee|tea|cocoa}, and started the day.",
]

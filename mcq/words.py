"""The closed vocabularies the question sources draw from (no world knowledge: every fact is stated or computed)."""

COLOURS = ("red", "blue", "green", "yellow", "purple", "orange", "pink", "brown", "black", "white", "grey",
           "silver", "gold", "teal", "beige", "violet", "maroon", "navy", "cyan", "olive")
OBJECTS = ("ball", "cup", "box", "hat", "book", "lamp", "vase", "kite", "shoe", "bag", "chair", "clock", "coat",
           "bowl", "pen", "mug", "sock", "ring", "bell", "drum", "fan", "jar", "key", "map", "rug", "tent", "vest",
           "desk", "door", "flag")
NAMES = ("Alice", "Bob", "Carol", "Dave", "Emma", "Frank", "Grace", "Henry", "Irene", "Jack", "Kate", "Liam", "Mia",
         "Noah", "Olga", "Paul", "Quinn", "Rosa", "Sam", "Tina", "Uma", "Victor", "Wendy", "Yusuf", "Zoe", "Omar",
         "Lena", "Hugo", "Nina", "Theo")
PETS = ("dog", "cat", "parrot", "hamster", "rabbit", "turtle", "goldfish", "lizard", "ferret", "mouse", "snake",
        "pony", "canary", "gerbil", "frog", "tortoise", "chinchilla", "hedgehog", "budgie", "pig")
KEY_CONSONANTS = "bcdfghjklmnprstvwz"
KEY_VOWELS = "aeiou"

# Common lowercase English nouns of 3 to 12 letters, for the alphabetical-order and length questions.
NOUNS = tuple(sorted(set("""
ant apple arm arrow autumn baby bag baker ball banana band bank barn basket bath beach bean bear bed bee bell
belt bench berry bicycle bird blanket boat body bone book boot bottle bowl box boy branch bread brick bridge
brother brush bucket butter button cabbage cake camera camp candle canoe cap car card carpet carrot castle cat
cave chain chair chalk cheese cherry chicken child church circle city class clock cloud coat coffee coin collar
comb cook corn cotton country cow crayon crow crown cup curtain cushion dance desk diamond dinner doctor dog doll
donkey door dragon drawer dream dress drink drum duck eagle ear earth egg elbow engine eye face farm father
feather fence field finger fire fish flag flame floor flower fog foot forest fork fox friend frog fruit garden
gate giant glass glove goat gold grape grass guitar hair hammer hand harbor hat head heart hill hole honey horse
hospital house ice island jacket jam jar jelly jewel juice kettle key king kitchen kite kitten knee knife
ladder lake lamp leaf lemon letter library light lion lizard lock machine magnet map market meadow milk mirror
money monkey moon morning mother mountain mouse mouth music nail needle nest net night nose notebook ocean office
onion orange oven owl paint palace pan paper parcel park parrot pasta peach pear pencil pepper piano picture pig
pillow pipe planet plant plate pocket pond potato puppy purse queen rabbit radio rain ribbon rice river road robot
rock roof room rope rose sail salad salt sand school scissors sea seed sheep shell ship shirt shoe shop shoulder
silver sister skirt sky snail snake snow soap sock sofa soup spoon spring square star station stone storm street
sugar summer sun sweater table tail teacher temple tent thread throat thumb ticket tiger toast tomato tongue tooth
towel tower town toy train tree truck tunnel turtle umbrella uncle valley van vase village violin wagon wall
wallet watch water whale wheel whistle window wing winter wolf wood wool worm yard yarn zebra
""".split())))

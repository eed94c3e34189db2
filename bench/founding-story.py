# The founding story's way into a database, as a user would write it: a paho-mqtt subscriber that
# inserts each reading as it comes, one INSERT and one commit per message, with psycopg2 (Debian's
# python3-paho-mqtt and python3-psycopg2). Run by bench/postgres.ts; prints "ready" once subscribed.
# Usage: python3 founding-story.py MQTT_PORT POSTGRES_URL TABLE
import json
import sys

import paho.mqtt.client as mqtt
import psycopg2

port, url, table = int(sys.argv[1]), sys.argv[2], sys.argv[3]
db = psycopg2.connect(url)
cur = db.cursor()


def on_connect(client, userdata, flags, rc):
    client.subscribe('sensors/+/temperature', qos=1)


def on_subscribe(client, userdata, mid, granted):
    print('ready', flush=True)


def on_message(client, userdata, msg):
    reading = json.loads(msg.payload)
    room = msg.topic.split('/')[1]
    cur.execute(f'INSERT INTO {table} (time, room, seq, celsius) VALUES (now(), %s, %s, %s)', (room, reading['seq'], reading['celsius']))
    db.commit()


client = mqtt.Client(client_id='founding-story')
client.on_connect = on_connect
client.on_subscribe = on_subscribe
client.on_message = on_message
client.connect('127.0.0.1', port)
client.loop_forever()
